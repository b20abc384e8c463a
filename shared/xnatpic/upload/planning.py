"""From discovered studies to session plans: labels, fields, collisions."""

from __future__ import annotations

from collections.abc import Iterable

from xnatpic.upload.discover import Source
from xnatpic.upload.errors import SourceError
from xnatpic.upload.labels import (
    DEFAULT_DEIDENTIFIED_SESSION_TEMPLATE,
    DEFAULT_DEIDENTIFIED_SUBJECT_TEMPLATE,
    DEFAULT_SESSION_TEMPLATE,
    DEFAULT_SUBJECT_TEMPLATE,
    check_deidentified_template,
    deidentified_fields,
    render_label,
    sanitize_xnat_label,
)
from xnatpic.upload.metadata import Metadata
from xnatpic.upload.prepare import SessionPlan

__all__ = ["build_plans"]


def build_plans(sources: Iterable[Source], project: str, *, metadata: Metadata | None = None,
                subject_template: str | None = None, session_template: str | None = None,
                raw: bool = True, deidentify: bool = False, salt: str = ""
                ) -> list[SessionPlan]:
    """One plan per study.

    Parameters
    ----------
    sources : iterable of Source
    project : str
    metadata : Metadata, optional
    subject_template, session_template : str, optional
        Label templates (default: :data:`DEFAULT_SUBJECT_TEMPLATE` and
        :data:`DEFAULT_SESSION_TEMPLATE`, or their de-identified versions).
    raw : bool
        Upload the raw ParaVision data (never with ``deidentify``).
    deidentify : bool
        Labels and session date from the de-identified values only (pseudonym, shifted
        date), as the converter writes them into the DICOM.
    salt : str
        The de-identification salt.

    Raises
    ------
    SourceError
        When the project label is not a valid XNAT id, a template names a missing field
        (or, with ``deidentify``, an identifying one), or two different studies would get
        the same session label.
    """
    if sanitize_xnat_label(project, "") != project:
        raise SourceError(f"--project {project!r}: XNAT project ids hold only letters, "
                          "digits, '_' and '-'")
    if deidentify:
        subject_template = subject_template or DEFAULT_DEIDENTIFIED_SUBJECT_TEMPLATE
        session_template = session_template or DEFAULT_DEIDENTIFIED_SESSION_TEMPLATE
        check_deidentified_template(subject_template, "--subject-template")
        check_deidentified_template(session_template, "--session-template")
    subject_template = subject_template or DEFAULT_SUBJECT_TEMPLATE
    session_template = session_template or DEFAULT_SESSION_TEMPLATE
    metadata = metadata or Metadata()
    plans: list[SessionPlan] = []
    for source in sources:
        where = str(source.path)
        fields = deidentified_fields(source.fields, salt) if deidentify else source.fields
        subject = render_label(subject_template, fields, fallback="subject", source=where)
        session = render_label(session_template, fields, fallback="session", source=where)
        meta = metadata.lookup(source.name, session, source.fields.get("animal_id", ""),
                               subject)
        if deidentify:
            # the animal id column names the animal: never sent with --deidentify
            meta.subject.pop("animal_id", None)
        date = fields.get("shifted_date", "") if deidentify else fields.get("date", "")
        plans.append(SessionPlan(source, project, subject, session, meta.subject,
                                 meta.session, raw=raw and not deidentify, date=date,
                                 deidentified=deidentify))
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
