"""From discovered studies to session plans: labels, fields, collisions."""

from __future__ import annotations

from collections.abc import Iterable

from xnatpic.upload.discover import Source
from xnatpic.upload.errors import SourceError
from xnatpic.upload.labels import (
    DEFAULT_SESSION_TEMPLATE,
    DEFAULT_SUBJECT_TEMPLATE,
    render_label,
    sanitize_xnat_label,
)
from xnatpic.upload.metadata import Metadata
from xnatpic.upload.prepare import SessionPlan

__all__ = ["build_plans"]


def build_plans(sources: Iterable[Source], project: str, *, metadata: Metadata | None = None,
                subject_template: str = DEFAULT_SUBJECT_TEMPLATE,
                session_template: str = DEFAULT_SESSION_TEMPLATE,
                raw: bool = True) -> list[SessionPlan]:
    """One plan per study.

    Raises
    ------
    SourceError
        When the project label is not a valid XNAT id, a template names a missing field,
        or two different studies would get the same session label.
    """
    if sanitize_xnat_label(project, "") != project:
        raise SourceError(f"--project {project!r}: XNAT project ids hold only letters, "
                          "digits, '_' and '-'")
    metadata = metadata or Metadata()
    plans: list[SessionPlan] = []
    for source in sources:
        where = str(source.path)
        subject = render_label(subject_template, source.fields, fallback="subject",
                               source=where)
        session = render_label(session_template, source.fields, fallback="session",
                               source=where)
        meta = metadata.lookup(source.name, session, source.fields.get("animal_id", ""),
                               subject)
        plans.append(SessionPlan(source, project, subject, session, meta.subject,
                                 meta.session, raw=raw))
    seen: dict[str, SessionPlan] = {}
    for plan in plans:
        other = seen.get(plan.session)
        if other is not None:
            raise SourceError(
                f"{other.source.path} and {plan.source.path} both become session "
                f"{plan.session!r} in project {plan.project}; XNAT session labels are unique "
                "per project: use --session-template with a distinguishing field "
                "(e.g. '{study_name}_{time}' or '{folder}')")
        seen[plan.session] = plan
    return plans
