"""The audits of a run's data on its report page: `evaluate-cnn RUN --audit DIR` attaches audit-data and
audit-labels output folders to the run (RUN/audits.json: each folder, its figures, and whether it audited the
labels CSV the run trained on), and report.html shows them with their pictures."""
from pathlib import Path

from cnn.runfolder import AUDIT_DATA, AUDIT_LABELS, AUDITS, read_json
from common.atomic import write_json
from common.errors import UsageError
from common.hashing import sha256_file

KINDS = {AUDIT_DATA: ("audit-data", "duplicates.png"), AUDIT_LABELS: ("audit-labels", "suspects.png")}
SHOWN = {"audit-data": ("images", "exact_sets", "near_sets", "sets_across_splits", "sets_with_two_labels",
                        "sets_across_groups", "copies_to_drop_for_clean", "odd_images"),
         "audit-labels": ("images", "folds", "flagged", "flagged_per_class", "confusable_pairs")}


def read_audit(folder):
    """{folder, kind, figures, picture_sha256} of a finished audit-data or audit-labels output folder, checked before
    it is recorded; a one-line error otherwise. The picture's hash lets the page show only the picture recorded."""
    for name, (kind, picture) in KINDS.items():
        path = Path(folder) / name
        if path.is_file():
            figures = read_json(path)
            if not isinstance(figures, dict) or not isinstance(figures.get("images"), int):
                raise UsageError(f"{path} is not an {kind} record (a JSON object with its figures); run {kind} again")
            drawn = Path(folder) / picture
            return {"folder": str(Path(folder).resolve()), "kind": kind, "figures": figures,
                    "picture_sha256": sha256_file(drawn) if drawn.is_file() else None}
    raise UsageError(f"{folder} holds no {AUDIT_DATA} or {AUDIT_LABELS}: give an audit-data -o or audit-labels "
                     f"--out folder")


def recorded_audits(run_dir):
    """RUN/audits.json's records; [] when there is none, None when the file is damaged (the page says so)."""
    path = Path(run_dir) / AUDITS
    if not path.is_file():
        return []
    try:
        records = read_json(path)
    except UsageError:
        return None
    fine = isinstance(records, list) and all(isinstance(r, dict) and r.get("kind") in SHOWN and
                                             isinstance(r.get("figures"), dict) and "folder" in r for r in records)
    return records if fine else None


def attach_audits(run_dir, folders):
    """Record the audits in RUN/audits.json (a folder attached again replaces its earlier record; a damaged file is
    started afresh). Every folder is checked before anything is written."""
    audits = [read_audit(folder) for folder in folders]
    records = {r["folder"]: r for r in recorded_audits(run_dir) or []}
    for audit in audits:
        records[audit["folder"]] = audit
    write_json(Path(run_dir) / AUDITS, list(records.values()))
