"""SQLAlchemy models, one module per area."""

from app.models.audit import ActivityLog
from app.models.settings import AppSetting
from app.models.users import User

__all__ = ["ActivityLog", "AppSetting", "User"]
