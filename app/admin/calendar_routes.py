"""Admin pages for the trading calendar: templates and weekday sessions, holidays, special sessions.

Part of the admin blueprint (guarded as a whole). Changes are POSTs with CSRF, go through
app.services.calendar, and are audited there.
"""

from __future__ import annotations

from datetime import date

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import extract, select
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectField,
    StringField,
    TimeField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

from app.admin import bp
from app.extensions import db
from app.forms_common import ActionForm, BaseForm
from app.models.calendar import MarketHoliday, SpecialTradingSession, TradingHoursTemplate
from app.models.types import utcnow
from app.request_input import parse_bounded_int
from app.services import calendar as calendar_service
from app.timeutil import IST

ALL_EXCHANGES = "ALL"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TIME_FORMATS = ["%H:%M", "%H:%M:%S"]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _date_field(label: str) -> DateField:
    return DateField(label, validators=[InputRequired(message="Enter a date.")], format="%Y-%m-%d")


def _description_field() -> StringField:
    return StringField("Description", filters=[_strip], validators=[
        DataRequired(message="Enter a description."), Length(max=128, message="Use at most 128 characters.")])


def _time_field(label: str, required: bool = True) -> TimeField:
    check = InputRequired(message="Enter a time.") if required else Optional()
    return TimeField(label, format=TIME_FORMATS, validators=[check])


def _end_after_start(form, field) -> None:
    start = form.start_time.data
    if start is not None and field.data is not None and field.data <= start:
        raise ValidationError("The session must end after it starts.")


class HolidayForm(BaseForm):
    holiday_date = _date_field("Date")
    exchange = SelectField("Exchange", validate_choice=True)
    description = _description_field()


class SpecialSessionForm(BaseForm):
    session_date = _date_field("Date")
    exchange = SelectField("Exchange", validate_choice=True)
    start_time = _time_field("Opens (IST)")
    end_time = _time_field("Closes (IST)")
    description = _description_field()

    validate_end_time = _end_after_start


class SessionRowForm(Form):
    """One weekday of a template; a day without times has no session."""

    active = BooleanField("Active")
    start_time = _time_field("Opens", required=False)
    end_time = _time_field("Closes", required=False)

    validate_end_time = _end_after_start

    def validate(self, extra_validators=None) -> bool:
        # Cross-field rules live here: Optional() stops a field's own chain when it is empty.
        valid = super().validate(extra_validators)
        if self.start_time.errors or self.end_time.errors:
            return False
        start, end = self.start_time.data, self.end_time.data
        if self.active.data and (start is None or end is None):
            self.end_time.errors = [*self.end_time.errors, "An active day needs both times."]
            return False
        if (start is None) != (end is None):
            self.end_time.errors = [*self.end_time.errors, "Enter both times, or neither."]
            return False
        return valid


class TemplateForm(BaseForm):
    name = StringField("Name", filters=[_strip], validators=[
        DataRequired(message="Enter a name."), Length(max=64, message="Use at most 64 characters.")])
    exchanges = StringField("Exchanges", filters=[_strip], validators=[
        DataRequired(message="List at least one exchange."), Length(max=128),
        Regexp(r"^[A-Za-z_]{2,16}(\s*,\s*[A-Za-z_]{2,16})*$",
               message="Comma-separated exchange codes, e.g. NSE,BSE,NFO,BFO.")])
    pre_open_buffer_minutes = IntegerField("Pre-open buffer (minutes)", validators=[
        InputRequired(message="Enter a number of minutes."),
        NumberRange(min=0, max=180, message="Use 0 to 180 minutes.")])
    is_active = BooleanField("Active")
    sessions = FieldList(FormField(SessionRowForm), min_entries=7, max_entries=7)


def _exchange_choices() -> list[tuple[str, str]]:
    codes = calendar_service.known_exchanges()
    return [(ALL_EXCHANGES, f"All ({', '.join(codes)})"), *((c, c) for c in codes)]


def _selected_exchanges(choice: str) -> list[str]:
    return calendar_service.known_exchanges() if choice == ALL_EXCHANGES else [choice]


def _apply_error(form: BaseForm, exc: calendar_service.CalendarError) -> None:
    field = form[exc.field] if exc.field and exc.field in form else None
    (field.errors if field is not None else form.form_errors).append(exc.message)


def _year() -> int:
    # An unknown year shows the current one (a bookmark from another year stays usable).
    year = parse_bounded_int(request.args.get("year"), minimum=1990, maximum=2100)
    return year if year is not None else utcnow().astimezone(IST).year


def _render_index(holiday_form: HolidayForm | None = None, special_form: SpecialSessionForm | None = None,
                  status: int = 200):
    year = _year()
    choices = _exchange_choices()
    holiday_form = holiday_form or HolidayForm(formdata=None, exchange=ALL_EXCHANGES)
    special_form = special_form or SpecialSessionForm(formdata=None, exchange=ALL_EXCHANGES)
    holiday_form.exchange.choices = special_form.exchange.choices = choices
    years = sorted({int(y) for y in db.session.scalars(
        select(extract("year", MarketHoliday.holiday_date)).distinct()) if y is not None} | {year})
    now = utcnow()
    cal = calendar_service.get_calendar()
    status_rows = [{"exchange": code, "open": cal.is_market_open(now, code),
                    "monitors": cal.monitors_should_run(now, code), "next_open": cal.next_open(now, code)}
                   for code in calendar_service.known_exchanges()]
    return render_template(
        "admin/calendar/index.html",
        templates=db.session.scalars(select(TradingHoursTemplate).order_by(TradingHoursTemplate.id)).all(),
        holidays=db.session.scalars(select(MarketHoliday)
                                    .where(extract("year", MarketHoliday.holiday_date) == year)
                                    .order_by(MarketHoliday.holiday_date, MarketHoliday.exchange)).all(),
        specials=db.session.scalars(select(SpecialTradingSession).order_by(
            SpecialTradingSession.session_date.desc(), SpecialTradingSession.exchange)).all(),
        year=year, years=years, status_rows=status_rows, weekdays=WEEKDAYS,
        holiday_form=holiday_form, special_form=special_form, action_form=ActionForm(),
    ), status


@bp.route("/calendar")
def calendar_index():
    return _render_index()


@bp.route("/calendar/holidays", methods=["POST"])
def calendar_add_holiday():
    form = HolidayForm()
    form.exchange.choices = _exchange_choices()
    if form.validate_on_submit():
        day: date = form.holiday_date.data
        try:
            calendar_service.add_holidays(current_user._get_current_object(), day,
                                          _selected_exchanges(form.exchange.data), form.description.data)
        except calendar_service.CalendarError as exc:
            _apply_error(form, exc)
        else:
            flash(f"Holiday added: {day:%d %b %Y}, {form.description.data}.", "success")
            return redirect(url_for("admin.calendar_index", year=day.year))
    return _render_index(holiday_form=form, status=400)


@bp.route("/calendar/holidays/<int:holiday_id>/delete", methods=["POST"])
def calendar_delete_holiday(holiday_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    holiday = db.session.get(MarketHoliday, holiday_id) or abort(404)
    day = holiday.holiday_date
    calendar_service.delete_holiday(current_user._get_current_object(), holiday)
    flash(f"Holiday removed: {day:%d %b %Y}.", "success")
    return redirect(url_for("admin.calendar_index", year=day.year))


@bp.route("/calendar/special-sessions", methods=["POST"])
def calendar_add_special_session():
    form = SpecialSessionForm()
    form.exchange.choices = _exchange_choices()
    if form.validate_on_submit():
        try:
            calendar_service.add_special_session(
                current_user._get_current_object(), form.session_date.data, _selected_exchanges(form.exchange.data),
                form.start_time.data, form.end_time.data, form.description.data)
        except calendar_service.CalendarError as exc:
            _apply_error(form, exc)
        else:
            flash(f"Special session added on {form.session_date.data:%d %b %Y}.", "success")
            return redirect(url_for("admin.calendar_index"))
    return _render_index(special_form=form, status=400)


@bp.route("/calendar/special-sessions/<int:special_id>/delete", methods=["POST"])
def calendar_delete_special_session(special_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    special = db.session.get(SpecialTradingSession, special_id) or abort(404)
    calendar_service.delete_special_session(current_user._get_current_object(), special)
    flash("Special session removed.", "success")
    return redirect(url_for("admin.calendar_index"))


def _template_form_data(template: TradingHoursTemplate) -> dict:
    by_day = {s.day_of_week: s for s in template.sessions}
    return {
        "name": template.name, "exchanges": template.exchanges,
        "pre_open_buffer_minutes": template.pre_open_buffer_minutes, "is_active": template.is_active,
        "sessions": [{"active": by_day[d].is_active, "start_time": by_day[d].start_time,
                      "end_time": by_day[d].end_time} if d in by_day else {"active": False}
                     for d in range(7)],
    }


@bp.route("/calendar/templates/<int:template_id>", methods=["GET", "POST"])
def calendar_edit_template(template_id: int):
    template = db.session.get(TradingHoursTemplate, template_id) or abort(404)
    form = TemplateForm(data=_template_form_data(template)) if request.method == "GET" else TemplateForm()
    if form.validate_on_submit():
        sessions = {day: (row.start_time.data, row.end_time.data, bool(row.active.data))
                    for day, row in enumerate(form.sessions.entries)}
        try:
            calendar_service.update_template(
                current_user._get_current_object(), template, name=form.name.data,
                exchanges=calendar_service.split_exchanges(form.exchanges.data),
                pre_open_buffer_minutes=form.pre_open_buffer_minutes.data, is_active=bool(form.is_active.data),
                sessions=sessions)
        except calendar_service.CalendarError as exc:
            db.session.rollback()
            _apply_error(form, exc)
        else:
            flash(f"Template {template.name} saved.", "success")
            return redirect(url_for("admin.calendar_index"))
    return render_template("admin/calendar/template.html", form=form, template=template, weekdays=WEEKDAYS), (
        400 if form.errors else 200)
