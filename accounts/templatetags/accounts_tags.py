from django import template

from accounts.models import Membership

register = template.Library()


@register.filter
def role_label(value: str) -> str:
    """``"scrum_master"`` → ``"Scrum Master"``."""
    try:
        return str(Membership.Role(value).label)
    except ValueError:
        return value
