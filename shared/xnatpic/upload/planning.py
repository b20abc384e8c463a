"""From discovered studies to session plans: labels, fields, collisions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from xnatpic.upload.discover import Problem, Source
from xnatpic.upload.errors import SourceError
from xnatpic.upload.labels import (
    DEFAULT_DEIDENTIFIED_SESSION_TEMPLATE,
    DEFAULT_DEIDENTIFIED_SUBJECT_TEMPLATE,
    DEFAULT_SESSION_TEMPLATE,
    DEFAULT_SUBJECT_TEMPLATE,
    check_deidentified_template,
    deidentified_fields,
    deidentified_subject_fields,
    render_label,
    sanitize_xnat_label,
    template_fields,
)
from xnatpic.upload.metadata import Metadata
from xnatpic.upload.prepare import SessionPlan

__all__ = ["Planned", "build_plans", "plan_sources"]


@dataclass
class Planned:
    """The session plans, and the studies that could not be planned (failed rows)."""

    plans: list[SessionPlan] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _templates(subject_template: str | None, session_template: str | None,
               deidentify: bool) -> tuple[str, str]:
    if deidentify:
        subject_template = subject_template or DEFAULT_DEIDENTIFIED_SUBJECT_TEMPLATE
        session_template = session_template or DEFAULT_DEIDENTIFIED_SESSION_TEMPLATE
        check_deidentified_template(subject_template, "--subject-template")
        check_deidentified_template(session_template, "--session-template")
    return (subject_template or DEFAULT_SUBJECT_TEMPLATE,
            session_template or DEFAULT_SESSION_TEMPLATE)


def _plan_one(source: Source, project: str, metadata: Metadata, templates: tuple[str, str],
              raw: bool, deidentify: bool, salt: str) -> SessionPlan:
    where = str(source.path)
    fields = deidentified_fields(source.fields, salt) if deidentify else source.fields
    subject = render_label(templates[0], fields, fallback="subject", source=where)
    session = render_label(templates[1], fields, fallback="session", source=where)
    meta = metadata.lookup(source.name, session, source.fields.get("animal_id", ""),
                           subject)
    # fields the data carry (IVIS user labels), a metadata file's columns first
    subject_fields = {**source.subject_defaults, **meta.subject}
    if deidentify:
        # no animal id; the date of birth shifted like the DICOM's
        subject_fields = deidentified_subject_fields(subject_fields, source.fields, salt,
                                                     source=where)
    date = fields.get("shifted_date", "") if deidentify else fields.get("date", "")
    return SessionPlan(source, project, subject, session, subject_fields,
                       {**source.session_defaults, **meta.session},
                       raw=raw and not deidentify, date=date, deidentified=deidentify)


def _collision(other: SessionPlan, plan: SessionPlan) -> str:
    return (f"{other.source.path} and {plan.source.path} both become session "
            f"{plan.session!r} in project {plan.project}; XNAT session labels are unique "
            "per project: use --session-template with a distinguishing field "
            "(e.g. '{study_name}_{time}' or '{folder}')")


def plan_sources(sources: Iterable[Source], project: str, *,
                 metadata: Metadata | None = None, subject_template: str | None = None,
                 session_template: str | None = None, raw: bool = True,
                 deidentify: bool = False, salt: str = "") -> Planned:
    """One plan per study; a study that cannot be planned fails alone.

    A study whose label template names a field it lacks, or two studies that would get
    the same session label (both fail: neither may land in the other's session), become
    failed :class:`~xnatpic.upload.discover.Problem` rows; the others are planned.

    Parameters
    ----------
    As :func:`build_plans`.

    Raises
    ------
    SourceError
        When the project id or a template is wrong for every study (bad project id, a
        malformed template, an identifying field with ``deidentify``).
    """
    if sanitize_xnat_label(project, "") != project:
        raise SourceError(f"--project {project!r}: XNAT project ids hold only letters, "
                          "digits, '_' and '-'")
    templates = _templates(subject_template, session_template, deidentify)
    for template in templates:
        template_fields(template)  # a malformed template is a usage error
    metadata = metadata or Metadata()
    out = Planned()
    for source in sources:
        try:
            out.plans.append(_plan_one(source, project, metadata, templates, raw,
                                       deidentify, salt))
        except SourceError as exc:
            out.problems.append(Problem(source.path, source.kind, "failed", str(exc)))
    by_label: dict[str, list[SessionPlan]] = {}
    for plan in out.plans:
        by_label.setdefault(plan.session, []).append(plan)
    for same in by_label.values():
        if len(same) > 1:
            for plan in same:
                other = same[1] if plan is same[0] else same[0]
                out.problems.append(Problem(plan.source.path, plan.source.kind, "failed",
                                            _collision(other, plan)))
    clashing = {id(p) for same in by_label.values() if len(same) > 1 for p in same}
    out.plans = [p for p in out.plans if id(p) not in clashing]
    return out


def build_plans(sources: Iterable[Source], project: str, *, metadata: Metadata | None = None,
                subject_template: str | None = None, session_template: str | None = None,
                raw: bool = True, deidentify: bool = False, salt: str = ""
                ) -> list[SessionPlan]:
    """One plan per study, refusing them all when one cannot be planned.

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
    planned = plan_sources(sources, project, metadata=metadata,
                           subject_template=subject_template,
                           session_template=session_template, raw=raw,
                           deidentify=deidentify, salt=salt)
    if planned.problems:
        raise SourceError(planned.problems[0].reason)
    return planned.plans
