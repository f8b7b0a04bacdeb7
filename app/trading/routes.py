from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Response, render_template, request
from flask_login import current_user, login_required

from app.extensions import rate_tier
from app.services import books
from app.trading import bp


@dataclass(frozen=True)
class BookView:
    kind: str
    title: str
    columns: tuple[tuple[str, str], ...]  # (key, label)
    money: tuple[str, ...]  # columns summed in the totals row
    filters: tuple[str, ...]


VIEWS = {
    "positions": BookView("positions", "Positions", (
        ("account", "Account"), ("symbol", "Symbol"), ("exchange", "Exchange"), ("product", "Product"),
        ("quantity", "Qty"), ("average_price", "Avg price"), ("ltp", "LTP"), ("pnl", "P&L")),
        ("pnl",), ("account", "exchange", "product")),
    "orders": BookView("orders", "Order book", (
        ("account", "Account"), ("time", "Time"), ("symbol", "Symbol"), ("exchange", "Exchange"),
        ("action", "Side"), ("quantity", "Qty"), ("price_type", "Type"), ("price", "Price"),
        ("trigger_price", "Trigger"), ("product", "Product"), ("status", "Status"), ("order_id", "Order id")),
        (), ("account", "exchange", "product", "status")),
    "trades": BookView("trades", "Trade book", (
        ("account", "Account"), ("time", "Time"), ("symbol", "Symbol"), ("exchange", "Exchange"),
        ("action", "Side"), ("quantity", "Qty"), ("average_price", "Price"), ("trade_value", "Value"),
        ("product", "Product"), ("order_id", "Order id")),
        ("trade_value",), ("account", "exchange", "product")),
    "holdings": BookView("holdings", "Holdings", (
        ("account", "Account"), ("symbol", "Symbol"), ("exchange", "Exchange"), ("quantity", "Qty"),
        ("average_price", "Avg price"), ("pnl", "P&L"), ("pnl_percent", "P&L %")),
        ("pnl",), ("account", "exchange")),
    "funds": BookView("funds", "Funds", (
        ("account", "Account"), ("available_cash", "Available cash"), ("collateral", "Collateral"),
        ("available_margin", "Available margin"), ("used_margin", "Used margin"),
        ("realized_pnl", "Realized M2M"), ("unrealized_pnl", "Unrealized M2M"), ("todays_pnl", "Today's P&L")),
        ("available_cash", "collateral", "available_margin", "used_margin", "realized_pnl", "unrealized_pnl",
         "todays_pnl"), ("account",)),
}


def _render(view: BookView):
    book = books.collect(current_user, view.kind)
    all_rows = book.rows
    rows = books.apply_filters(all_rows, request.args)
    sort = request.args.get("sort") or None
    rows = books.sort_rows(rows, sort if sort in dict(view.columns) else None, request.args.get("dir") == "desc")
    columns = [key for key, _ in view.columns]
    if request.args.get("format") == "csv":
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return Response(books.to_csv(rows, columns), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{view.kind}-{stamp}.csv"'})
    options = {f: sorted({str(r.get(f)) for r in all_rows if r.get(f)}) for f in view.filters}
    return render_template("trading/book.html", view=view, rows=rows, errors=book.errors, options=options,
                           totals=books.totals(rows, view.money), args=request.args)


def _book(kind: str):
    return _render(VIEWS[kind])


# One view serves every book; the endpoint names (trading.funds, trading.positions, …) and the
# paths keep the original product's URLs.
for _path, _endpoint, _kind in (("/funds", "funds", "funds"), ("/positions", "positions", "positions"),
                                ("/orderbook", "orderbook", "orders"), ("/tradebook", "tradebook", "trades"),
                                ("/holdings", "holdings", "holdings")):
    bp.add_url_rule(_path, endpoint=_endpoint, view_func=rate_tier("api")(login_required(_book)),
                    defaults={"kind": _kind})


@bp.route("/option-chain")
@login_required
def option_chain():
    from app.domain.instruments import UNDERLYINGS

    return render_template("trading/option_chain.html", underlyings=list(UNDERLYINGS),
                           selected=request.args.get("underlying", "NIFTY"))
