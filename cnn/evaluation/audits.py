"""The audits of a run's data on its report page: `evaluate-cnn RUN --audit DIR` attaches audit-data and
audit-labels output folders to the run (RUN/audits.json: each folder, its figures, and whether it audited the
labels CSV the run trained on), and report.html shows them with their pictures."""
from pathlib import Path

from cnn.runfolder import AUDIT_DATA, AUDIT_LABELS, AUDITS, read_json
from common.atomic import write_json
from common.errors import UsageError

KINDS = {AUDIT_DATA: ("audit-data", "duplicates.png"), AUDIT_LABELS: ("audit-labels", "suspects.png")}
SHOWN = {"audit-data": ("images", "exact_sets", "near_sets", "sets_across_splits", "sets_with_two_labels",
                        "sets_across_groups", "copies_to_drop_for_clean", "odd_images"),
         "audit-labels": ("images", "folds", "flagged", "flagged_per_class", "confusable_pairs")}


def read_audit(folder):
    """{folder, kind, figures} of an audit-data or audit-labels output folder; a one-line error otherwise."""
    for name, (kind, _) in KINDS.items():
        if (Path(folder) / name).is_file():
            return {"folder": str(Path(folder).resolve()), "kind": kind, "figures": read_json(Path(folder) / name)}
    raise UsageError(f"{folder} holds no {AUDIT_DATA} or {AUDIT_LABELS}: give an audit-data -o or audit-labels "
                     f"--out folder")


def attach_audits(run_dir, folders):
    """Record the audits in RUN/audits.json (a folder attached again replaces its earlier record)."""
    records = {r["folder"]: r for r in (read_json(Path(run_dir) / AUDITS) if (Path(run_dir) / AUDITS).is_file()
                                        else [])}
    for audit in map(read_audit, folders):
        records[audit["folder"]] = audit
    write_json(Path(run_dir) / AUDITS, list(records.values()))
