from .models import Dataset, Person, Policy, Purpose
from .permissions import has_role, roles_of, user_can


def navigation(request):
    """The links a user's roles allow; templates never test roles themselves."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    items = [
        ("dashboard", "Dashboard"),
        ("dataset-list", "Catalogue"),
        ("purpose-list", "Purposes"),
        ("policy-list", "Policies"),
    ]
    if user_can(user, "view", Person):
        items.append(("person-list", "People"))
    return {
        "nav_items": items,
        "nav_roles": sorted(roles_of(user)),
        "nav_admin": user.is_staff,
        "nav_can": {
            "add_dataset": user_can(user, "add", Dataset),
            "add_purpose": user_can(user, "add", Purpose),
            "add_policy": user_can(user, "add", Policy),
            "is_dpo": has_role(user, "Data protection officer"),
        },
    }
