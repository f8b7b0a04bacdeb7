"""SQLAlchemy models, one module per area."""

from app.models.accounts import TradingAccount
from app.models.audit import ActivityLog
from app.models.calendar import MarketHoliday, SpecialTradingSession, TradingHoursTemplate, TradingSession
from app.models.execution import (
    ExitRequest,
    KillSwitch,
    OrderIntent,
    OrderIntentEvent,
    RunAccount,
    RunLeg,
    StrategyRun,
)
from app.models.risk import AccountRiskBlock, RiskEvent
from app.models.services import ServiceHeartbeat, ServiceLease
from app.models.sessions import UserSession
from app.models.settings import AppSetting
from app.models.strategies import Strategy, StrategyAccount, StrategyLeg, StrategyTemplate
from app.models.trading_settings import MarginRequirement, TradeQuality, TradingSettings
from app.models.users import User

__all__ = [
    "AccountRiskBlock",
    "ActivityLog",
    "AppSetting",
    "ExitRequest",
    "KillSwitch",
    "MarginRequirement",
    "MarketHoliday",
    "OrderIntent",
    "OrderIntentEvent",
    "RiskEvent",
    "RunAccount",
    "RunLeg",
    "ServiceHeartbeat",
    "ServiceLease",
    "SpecialTradingSession",
    "Strategy",
    "StrategyAccount",
    "StrategyLeg",
    "StrategyRun",
    "StrategyTemplate",
    "TradeQuality",
    "TradingAccount",
    "TradingHoursTemplate",
    "TradingSession",
    "TradingSettings",
    "User",
    "UserSession",
]
