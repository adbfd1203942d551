"""Registry as code: ``manage.py apply FILE.yaml``.

A file holds YAML documents separated by ``---``; each has one top-level key naming
its kind. The whole file is applied in one transaction: any error (reported with the
document number, line and reason) changes nothing. Applying a file twice changes
nothing the second time and writes no history.

Later layers add kinds with ``register_kind`` (from their AppConfig.ready()).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import (
    Committee,
    Dataset,
    DatasetStatus,
    DecisionRule,
    FieldType,
    LegalBasis,
    Purpose,
    PurposeCategory,
    Rule,
    RuleKind,
    RuleSeverity,
    Seat,
    Sensitivity,
    User,
)
from . import registry


class ApplyError(Exception):
    def __init__(self, message: str, *, line: int | None = None, document: int | None = None):
        self.message, self.line, self.document = message, line, document
        super().__init__(message)

    def __str__(self):
        where = []
        if self.document is not None:
            where.append(f"document {self.document}")
        if self.line is not None:
            where.append(f"line {self.line}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class ApplyRejected(Exception):
    def __init__(self, errors: list[ApplyError]):
        self.errors = errors
        super().__init__("\n".join(map(str, errors)))


@dataclass
class Outcome:
    kind: str
    key: str
    action: str  # created | updated | unchanged
    details: list[str] = field(default_factory=list)

    def __str__(self):
        text = f"{self.kind} {self.key}: {self.action}"
        return text + (f" ({'; '.join(self.details)})" if self.details else "")


# --- YAML with line numbers -------------------------------------------------------------


class Node(dict):
    """A mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict

    def line_of(self, key) -> int:
        return self.key_lines.get(key, self.line)


class _Loader(yaml.SafeLoader):
    def construct_custos_map(self, node):
        data = Node()
        data.line = node.start_mark.line + 1
        data.key_lines = {}
        yield data
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in data.key_lines:
                raise ApplyError(f"key {key!r} appears twice", line=key_node.start_mark.line + 1)
            data.key_lines[key] = key_node.start_mark.line + 1
            data[key] = self.construct_object(value_node, deep=True)

    def construct_custos_str(self, node):
        # PostgreSQL text cannot hold a NUL; YAML's "\0" escape would make one.
        value = self.construct_yaml_str(node)
        if "\x00" in value:
            raise ApplyError(
                "a text holds a NUL character (\\0), which no field accepts",
                line=node.start_mark.line + 1,
            )
        return value


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_custos_map)
_Loader.add_constructor("tag:yaml.org,2002:str", _Loader.construct_custos_str)


def parse_documents(text: str) -> list[Node]:
    documents: list[Node] = []
    try:
        # One at a time, so a parse error can name the document it is in.
        for document in yaml.load_all(text, Loader=_Loader):  # noqa: S506 - SafeLoader subclass
            if document is not None:
                documents.append(document)
    except ApplyError as exc:
        exc.document = len(documents) + 1
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ApplyError(
            f"not valid YAML: {exc.problem or exc}",
            line=mark.line + 1 if mark else None,
            document=len(documents) + 1,
        ) from exc
    except yaml.YAMLError as exc:
        raise ApplyError(f"not valid YAML: {exc}", document=len(documents) + 1) from exc
    return documents


# --- checking a document's shape ---------------------------------------------------------


def check_keys(node, allowed: set[str], required: set[str], what: str) -> None:
    if not isinstance(node, Node):
        raise ApplyError(
            f"{what} must be a mapping of keys to values", line=getattr(node, "line", None)
        )
    for key in node:
        if key not in allowed:
            raise ApplyError(
                f"unknown key {key!r} in {what}; expected one of {', '.join(sorted(allowed))}",
                line=node.line_of(key),
            )
    for key in sorted(required - set(node)):
        raise ApplyError(f"{what} needs the key {key!r}", line=node.line)


def choice(node: Node, key: str, choices, what: str, default=None):
    value = node.get(key, default)
    valid = [c.value for c in choices]
    if value not in valid:
        raise ApplyError(
            f"unknown {what} {value!r}; expected one of {', '.join(valid)}", line=node.line_of(key)
        )
    return value


def text(node: Node, key: str, default: str | None = "") -> str:
    value = node.get(key, default)
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ApplyError(f"{key} must be text", line=node.line_of(key))
    return str(value)


def string_list(node: Node, key: str) -> list[str]:
    value = node.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise ApplyError(f"{key} must be a list of names", line=node.line_of(key))
    return [str(v) for v in value]


def number(node: Node, key: str) -> float | None:
    value = node.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ApplyError(f"{key} must be a number", line=node.line_of(key))
    return value


def number_list(node: Node, key: str) -> list:
    value = node.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise ApplyError(f"{key} must be a list of numbers", line=node.line_of(key))
    return value


def flag(node: Node, *keys: str) -> bool:
    present = [k for k in keys if k in node]
    if len(present) > 1:
        raise ApplyError(f"give only one of {', '.join(present)}", line=node.line_of(present[1]))
    if not present:
        return False
    value = node[present[0]]
    if not isinstance(value, bool):
        raise ApplyError(f"{present[0]} must be true or false", line=node.line_of(present[0]))
    return value


def validation_to_apply_error(exc: ValidationError, node: Node) -> ApplyError:
    if hasattr(exc, "error_dict"):
        key, messages = next(iter(exc.message_dict.items()))
        line = node.line_of(key) if key in node else node.line
        label = f"{key}: " if key != "__all__" else ""
        return ApplyError(f"{label}{' '.join(messages)}", line=line)
    return ApplyError(" ".join(exc.messages), line=node.line)


# --- kinds ----------------------------------------------------------------------------

Handler = Callable[..., Outcome]
_KINDS: dict[str, tuple[int, Handler]] = {}


def register_kind(name: str, handler: Handler, *, order: int) -> None:
    """Accept ``name:`` documents; lower ``order`` is applied first within a file."""
    _KINDS[name] = (order, handler)


def apply_purpose(node: Node, *, actor) -> Outcome:
    check_keys(
        node,
        {
            "slug",
            "name",
            "category",
            "expected_benefit",
            "legal_basis",
            "consent_text",
            "committee",
        },
        {"slug", "name", "category", "expected_benefit", "legal_basis"},
        "a purpose",
    )
    values = {
        "name": text(node, "name"),
        "category": choice(node, "category", PurposeCategory, "category"),
        "expected_benefit": text(node, "expected_benefit"),
        "legal_basis": choice(node, "legal_basis", LegalBasis, "legal basis"),
        "consent_text": text(node, "consent_text"),
        "committee": None,
    }
    committee_slug = text(node, "committee")
    if committee_slug:
        values["committee"] = Committee.objects.filter(slug=committee_slug).first()
        if values["committee"] is None:
            raise ApplyError(
                f"unknown committee {committee_slug!r}", line=node.line_of("committee")
            )
    slug = text(node, "slug")
    if values["legal_basis"] == LegalBasis.CONSENT and not values["consent_text"].strip():
        raise ApplyError(
            "consent_text is required when legal_basis is consent", line=node.line_of("legal_basis")
        )
    purpose = Purpose.objects.filter(slug=slug).first()
    if purpose is None:
        registry.purpose_create(actor=actor, slug=slug, **values)
        return Outcome("purpose", slug, "created")
    before = {k: getattr(purpose, k) for k in values}
    if registry.purpose_update(actor=actor, purpose=purpose, **values):
        return Outcome("purpose", slug, "updated", [k for k in values if before[k] != values[k]])
    return Outcome("purpose", slug, "unchanged")


_DATASET_KEYS = {
    "slug",
    "name",
    "description",
    "source_system",
    "lawful_basis",
    "retention_days",
    "tags",
    "stewards",
    "purposes",
    "person_column",
    "status",
    "fields",
}
_FIELD_KEYS = {
    "name",
    "label",
    "description",
    "type",
    "sensitivity",
    "values",
    "minimum",
    "maximum",
    "groups",
    "identifier",
    "is_identifier",
    "protected_attribute",
    "is_protected_attribute",
    "excluded",
}


def _field_values(node: Node, position: int) -> dict:
    check_keys(node, _FIELD_KEYS, {"name", "type", "sensitivity"}, "a field")
    field_type = choice(node, "type", FieldType, "type")
    allowed = string_list(node, "values")
    if allowed and field_type != FieldType.CATEGORY:
        raise ApplyError("only a category field may list values", line=node.line_of("values"))
    return {
        "name": text(node, "name"),
        "label": text(node, "label"),
        "description": text(node, "description"),
        "type": field_type,
        "sensitivity": choice(node, "sensitivity", Sensitivity, "sensitivity"),
        "values": allowed,
        "minimum": number(node, "minimum"),
        "maximum": number(node, "maximum"),
        "bins": number_list(node, "groups"),
        "is_identifier": flag(node, "identifier", "is_identifier"),
        "is_protected_attribute": flag(node, "protected_attribute", "is_protected_attribute"),
        "excluded": flag(node, "excluded"),
        "position": position,
    }


def apply_dataset(node: Node, *, actor) -> Outcome:
    check_keys(
        node,
        _DATASET_KEYS,
        {"slug", "name", "lawful_basis", "retention_days", "stewards"},
        "a dataset",
    )
    slug = text(node, "slug")
    retention = node["retention_days"]
    if not isinstance(retention, int) or isinstance(retention, bool) or retention < 1:
        raise ApplyError(
            "retention_days must be a whole number of days, at least 1",
            line=node.line_of("retention_days"),
        )
    stewards = []
    for email in string_list(node, "stewards"):
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            raise ApplyError(
                f"unknown steward {email!r}: no active login has that e-mail",
                line=node.line_of("stewards"),
            )
        stewards.append(user)
    if not stewards:
        raise ApplyError("a dataset needs at least one steward", line=node.line_of("stewards"))
    purposes = []
    for slug_ in string_list(node, "purposes"):
        purpose = Purpose.objects.filter(slug=slug_).first()
        if purpose is None:
            raise ApplyError(f"unknown purpose {slug_!r}", line=node.line_of("purposes"))
        purposes.append(purpose)
    field_nodes = node.get("fields") or []
    if not isinstance(field_nodes, list):
        raise ApplyError("fields must be a list", line=node.line_of("fields"))
    fields = []
    seen = set()
    for position, field_node in enumerate(field_nodes):
        values = _field_values(field_node, position)
        if values["name"] in seen:
            raise ApplyError(f"field {values['name']!r} is listed twice", line=field_node.line)
        seen.add(values["name"])
        fields.append((field_node, values))

    values = {
        "name": text(node, "name"),
        "description": text(node, "description"),
        "source_system": text(node, "source_system"),
        "lawful_basis": choice(node, "lawful_basis", LegalBasis, "lawful basis"),
        "retention_days": retention,
        "person_column": text(node, "person_column", "external_id") or "external_id",
    }
    if "status" in node:
        values["status"] = choice(node, "status", DatasetStatus, "status")
    lists = {"tags": string_list(node, "tags"), "stewards": stewards, "purposes": purposes}

    dataset = Dataset.objects.filter(slug=slug).first()
    details: list[str] = []
    if dataset is None:
        dataset = registry.dataset_create(actor=actor, slug=slug, **values, **lists)
        action = "created"
    else:
        changed = registry.dataset_update(actor=actor, dataset=dataset, **values, **lists)
        action = "updated" if changed else "unchanged"
        if changed:
            details.append("dataset")

    existing = {f.name: f for f in dataset.fields.all()}
    for field_node, field_values in fields:
        current = existing.pop(field_values["name"], None)
        try:
            if current is None:
                registry.field_create(actor=actor, dataset=dataset, **field_values)
                details.append(f"field {field_values['name']} added")
            elif registry.field_update(actor=actor, field=current, **field_values):
                details.append(f"field {field_values['name']} changed")
        except ValidationError as exc:
            raise validation_to_apply_error(exc, field_node) from exc
    if details and action == "unchanged":
        action = "updated"
    for name in existing:
        details.append(f"field {name} is not in the file and was left as it is")
    return Outcome("dataset", slug, action, details)


def _whole_number(node: Node, key: str, default: int, minimum: int) -> int:
    value = node.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ApplyError(
            f"{key} must be a whole number, at least {minimum}", line=node.line_of(key)
        )
    return value


def _committee_members(node: Node) -> list[tuple[User, str]]:
    """The (login, seat) pairs of a committee document, each problem at its own line."""
    member_nodes = node["members"]
    if not isinstance(member_nodes, list) or not member_nodes:
        raise ApplyError("members must be a list of {email, seat}", line=node.line_of("members"))
    members: list[tuple[User, str]] = []
    chair_node = None
    for member_node in member_nodes:
        check_keys(member_node, {"email", "seat"}, {"email", "seat"}, "a member")
        email = text(member_node, "email").strip()
        seat = choice(member_node, "seat", Seat, "seat")
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            raise ApplyError(
                f"unknown member {email!r}: no active login has that e-mail",
                line=member_node.line_of("email"),
            )
        if any(other.pk == user.pk for other, _ in members):
            raise ApplyError(f"member {email!r} is listed twice", line=member_node.line)
        if seat == Seat.CHAIR:
            if chair_node is not None:
                raise ApplyError(
                    f"a committee has exactly one chair: {email!r} is a second one "
                    f"(the chair is {text(chair_node, 'email')!r})",
                    line=member_node.line_of("seat"),
                )
            chair_node = member_node
        members.append((user, seat))
    if chair_node is None:
        raise ApplyError(
            "a committee has exactly one chair: give one member seat: chair",
            line=node.line_of("members"),
        )
    return members


def apply_committee(node: Node, *, actor) -> Outcome:
    check_keys(
        node,
        {"slug", "name", "quorum", "rule", "default", "members"},
        {"slug", "name", "members"},
        "a committee",
    )
    slug = text(node, "slug")
    values = {
        "name": text(node, "name"),
        "quorum": _whole_number(node, "quorum", 3, 1),
        "rule": choice(node, "rule", DecisionRule, "decision rule", DecisionRule.MAJORITY),
        "is_default": flag(node, "default"),
    }
    members = _committee_members(node)
    if values["quorum"] > len(members):
        raise ApplyError(
            f"quorum {values['quorum']} can never be met by {len(members)} member(s)",
            line=node.line_of("quorum"),
        )
    if values["is_default"]:
        other = Committee.objects.filter(is_default=True).exclude(slug=slug).first()
        if other is not None:
            raise ApplyError(
                f"only one committee can be the default, and {other.slug!r} is: give it "
                "default: false first (in an earlier document, or an earlier apply)",
                line=node.line_of("default"),
            )
    committee = Committee.objects.filter(slug=slug).first()
    if committee is None:
        registry.committee_create(actor=actor, slug=slug, members=members, **values)
        return Outcome("committee", slug, "created")
    before = {k: getattr(committee, k) for k in values}
    details = []
    if registry.committee_update(actor=actor, committee=committee, **values):
        # Named as in the file: ``default``, not the column ``is_default``.
        details = [k.removeprefix("is_") for k in values if before[k] != values[k]]
    details += registry.committee_set_members(actor=actor, committee=committee, members=members)
    return Outcome("committee", slug, "updated" if details else "unchanged", details)


def _plain(value):
    """YAML mappings (line-numbered ``Node``s) as plain dicts, for a JSON field."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def apply_rule(node: Node, *, actor) -> Outcome:
    check_keys(
        node,
        {"slug", "name", "kind", "severity", "description", "parameters", "enabled"},
        {"slug", "name", "kind", "severity"},
        "a rule",
    )
    slug = text(node, "slug")
    kind = choice(node, "kind", RuleKind, "rule kind")
    parameters = node.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ApplyError("parameters must be a mapping", line=node.line_of("parameters"))
    enabled = node.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ApplyError("enabled must be true or false", line=node.line_of("enabled"))
    values = {
        "name": text(node, "name"),
        "severity": choice(node, "severity", RuleSeverity, "severity"),
        "description": text(node, "description"),
        "parameters": _plain(parameters),
        "enabled": enabled,
    }
    rule = Rule.objects.filter(slug=slug).first()
    try:
        if rule is None:
            registry.rule_create(actor=actor, slug=slug, kind=kind, **values)
            return Outcome("rule", slug, "created")
        if rule.kind != kind:
            raise ApplyError(
                f"rule {slug!r} checks {rule.kind!r}; a rule's kind never changes: "
                "add a rule with a new slug and disable this one",
                line=node.line_of("kind"),
            )
        before = {k: getattr(rule, k) for k in values}
        if registry.rule_update(actor=actor, rule=rule, **values):
            return Outcome("rule", slug, "updated", [k for k in values if before[k] != values[k]])
    except ValidationError as exc:
        raise validation_to_apply_error(exc, node) from exc
    return Outcome("rule", slug, "unchanged")


# Committees before purposes (a purpose names its committee); purposes before datasets.
register_kind("committee", apply_committee, order=5)
register_kind("purpose", apply_purpose, order=10)
register_kind("dataset", apply_dataset, order=20)
register_kind("rule", apply_rule, order=30)


def apply_text(text_: str, *, actor) -> list[Outcome]:
    """Apply every document of a YAML text in one transaction, or nothing."""
    documents = parse_documents(text_)
    errors: list[ApplyError] = []
    work = []
    for number, document in enumerate(documents, start=1):
        if not isinstance(document, Node) or len(document) != 1:
            errors.append(
                ApplyError(
                    f"a document must have exactly one top-level key: {', '.join(sorted(_KINDS))}",
                    line=getattr(document, "line", None),
                    document=number,
                )
            )
            continue
        kind = next(iter(document))
        if kind not in _KINDS:
            errors.append(
                ApplyError(
                    f"unknown kind {kind!r}; expected one of {', '.join(sorted(_KINDS))}",
                    line=document.line,
                    document=number,
                )
            )
            continue
        work.append((_KINDS[kind][0], number, kind, document))
    if errors:
        raise ApplyRejected(errors)
    if not work:
        raise ApplyRejected([ApplyError("the file holds no documents")])

    outcomes: list[Outcome] = []
    try:
        with transaction.atomic():
            for _, number, kind, document in sorted(work, key=lambda w: (w[0], w[1])):
                body = document[kind]
                try:
                    outcomes.append(_KINDS[kind][1](body, actor=actor))
                except ApplyError as exc:
                    exc.document = number
                    exc.line = exc.line or document.line
                    errors.append(exc)
                except ValidationError as exc:
                    error = validation_to_apply_error(
                        exc, body if isinstance(body, Node) else document
                    )
                    error.document = number
                    errors.append(error)
            if errors:
                raise ApplyRejected(errors)
    except ApplyRejected:
        raise
    return outcomes
