"""Check the negation rules against the published release.

For every OpenBookQA item of the release (metadata: id, split, negation_rule) the original
stem is negated again and compared with the published question, contraction choice and
prompt variant aside. gold/* items: the rule is compared and the stem must be unchanged.
"manual/un-in-" items were written by hand in the release and are counted apart.

    python -m data_pipeline.check                       # data_pipeline/neqa.jsonl vs the vendored sources
    python -m data_pipeline.check --parser fallback --json check.json
    python -m data_pipeline.check --parser fallback --sample tests/fixtures/negation_sample.jsonl

--sample reads a hand-judged sample of stems outside the release (each output judged correct or not by a
person, tests/fixtures/negation_sample.md gives the rule), negates the stems again with the chosen parser
and reports the error rate per rule; an output that differs from the judged one is counted as unjudged
(listed, exit status 1: the sample must be judged again).
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from neqa.io import DataError, FieldError, UsageError, iter_jsonl, write_json

from neqa.cli import check_outputs, command
from .negation import PROMPT_PREFIXES, RULES, negate_stem, parser_name, set_parser
from .sources import load_openbookqa

ROOT = Path(__file__).resolve().parent
MANUAL_RULE = "manual/un-in-"

_FULL = {"isn't": "is not", "aren't": "are not", "wasn't": "was not", "weren't": "were not",
         "can't": "can not", "cannot": "can not", "couldn't": "could not", "won't": "will not",
         "wouldn't": "would not", "doesn't": "does not", "don't": "do not", "didn't": "did not",
         "mayn't": "may not", "mightn't": "might not"}
_FULL_RE = re.compile(r"\b(" + "|".join(re.escape(k) for k in _FULL) + r")\b", re.IGNORECASE)


def comparison_form(question: str) -> str:
    """Contractions written out, either prompt prefix replaced by one marker, spacing tidied."""
    q = question.replace("’", "'")
    for p in PROMPT_PREFIXES:
        if q.startswith(p):
            q = "<prompt> " + q[len(p):]
    q = _FULL_RE.sub(lambda m: _FULL[m.group().lower()], q)
    q = re.sub(r"\s+('s|'re|'ve|'ll|'d|n't)\b", r"\1", q)      # "moon 's" -> "moon's"
    return " ".join(q.split()).lower()


@dataclass
class Disagreement:
    id: str
    published_rule: str
    our_rule: str | None
    published: str
    ours: str | None


@dataclass
class RuleStats:
    n: int = 0
    agree: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        """None when there is nothing to rate (JSON has no NaN)."""
        return self.agree / self.n if self.n else None


@dataclass
class CheckReport:
    parser: str
    per_rule: dict[str, RuleStats]          # published rule -> stats (rule-made and gold rules)
    manual: RuleStats                       # hand-made items: "agree" = our rule says gold/* or none

    @property
    def rule_made(self) -> RuleStats:
        total = RuleStats()
        for stats in self.per_rule.values():
            total.n += stats.n
            total.agree += stats.agree
            total.disagreements += stats.disagreements
        return total

    @property
    def rate(self) -> float:
        return self.rule_made.rate

    def to_json(self) -> dict:
        def stats(s: RuleStats) -> dict:
            return {"n": s.n, "agree": s.agree, "rate": s.rate,
                    "disagreements": [vars(d) for d in s.disagreements]}
        return {"parser": self.parser, "rate": self.rate, "n": self.rule_made.n, "agree": self.rule_made.agree,
                "per_rule": {r: stats(s) for r, s in self.per_rule.items()}, "manual": stats(self.manual)}


def _check_reference(r: dict) -> None:
    if not isinstance(r.get("question"), str):
        raise FieldError("question", "missing or not a string")
    if not isinstance(r.get("metadata"), dict):
        raise FieldError("metadata", "missing or not an object")


def check_against_reference(reference_path, obqa_items_by_id: dict[str, dict]) -> CheckReport:
    """Negate each published OpenBookQA item's original stem and compare with the release."""
    per_rule: dict[str, RuleStats] = {}
    manual = RuleStats()
    for line, r in enumerate(iter_jsonl(reference_path, _check_reference), 1):
        meta = r["metadata"]
        if "id" not in meta:            # a Negated-LAMA item
            continue
        rule = meta.get("negation_rule")
        if rule not in RULES and rule != MANUAL_RULE:
            raise DataError(reference_path, line, "metadata.negation_rule", f"unknown rule {rule!r}")
        src = obqa_items_by_id.get(str(meta["id"]))
        if src is None:
            raise DataError(reference_path, line, "metadata.id",
                            f"{meta['id']!r} is not among the OpenBookQA items given")
        stem = src["question"]["stem"]
        ours = negate_stem(stem)
        if rule == MANUAL_RULE:
            stats = manual
            agree = ours.rule is None or ours.rule.startswith("gold/")
        else:
            stats = per_rule.setdefault(rule, RuleStats())
            if rule.startswith("gold/"):
                agree = ours.rule == rule and r["question"] == stem
            else:
                agree = ours.rule == rule and comparison_form(ours.question) == comparison_form(r["question"])
        stats.n += 1
        if agree:
            stats.agree += 1
        else:
            stats.disagreements.append(Disagreement(str(meta["id"]), rule, ours.rule, r["question"], ours.question))
    order = {r: i for i, r in enumerate(RULES)}
    per_rule = dict(sorted(per_rule.items(), key=lambda kv: order[kv[0]]))
    return CheckReport(parser_name(), per_rule, manual)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def format_report(report: CheckReport) -> str:
    lines = [f"parser: {report.parser}", f"{'rule':<14}{'n':>5}{'agree':>7}{'rate':>8}"]
    for rule, s in report.per_rule.items():
        lines.append(f"{rule:<14}{s.n:>5}{s.agree:>7}{_pct(s.rate):>8}")
    total = report.rule_made
    lines.append(f"{'all':<14}{total.n:>5}{total.agree:>7}{_pct(total.rate):>8}")
    m = report.manual
    lines.append(f"{MANUAL_RULE:<14}{m.n:>5}{m.agree:>7}  (hand-made in the release; agree = our rules leave it)")
    if total.disagreements:
        lines.append("\ndisagreements (id, published rule -> ours):")
        for d in total.disagreements:
            lines.append(f"  {d.id}  {d.published_rule} -> {d.our_rule}\n    published: {d.published}\n"
                         f"    ours:      {d.ours}")
    return "\n".join(lines)


def _check_judged(r: dict) -> None:
    for key in ("id", "stem", "part"):
        if not isinstance(r.get(key), str):
            raise FieldError(key, "missing or not a string")
    for key in ("fallback", "spacy"):
        if not isinstance(r.get(key), dict) or not isinstance(r[key].get("correct"), bool):
            raise FieldError(f"{key}.correct", "missing or not true/false")


def sample_report(path) -> dict:
    """Per rule (as this parser assigns it) and per part of a judged sample: n, wrong, unjudged."""
    key = "spacy" if parser_name() == "spacy" else "fallback"
    per_rule: dict[str, dict] = {}
    per_part: dict[str, dict] = {}
    unjudged = []
    for r in iter_jsonl(path, _check_judged):
        ours = negate_stem(r["stem"])
        judged = r[key]
        same = ours.rule == judged.get("rule") and ours.question == judged.get("output")
        for table, name in ((per_rule, str(ours.rule)), (per_part, r["part"]), (per_part, "all")):
            row = table.setdefault(name, {"n": 0, "wrong": 0, "unjudged": 0})
            row["n"] += 1
            row["wrong"] += same and not judged["correct"]
            row["unjudged"] += not same
        if not same:
            unjudged.append((r["id"], judged.get("output"), ours.question))
    order = {name: i for i, name in enumerate(RULES + ("None", "dev", "dev2", "heldout", "heldout2", "all"))}
    def ordered(table):
        return dict(sorted(table.items(), key=lambda kv: order.get(kv[0], len(order))))
    return {"parser": parser_name(), "judged_as": key, "per_rule": ordered(per_rule), "per_part": ordered(per_part),
            "unjudged": unjudged}


def format_sample(report: dict) -> str:
    lines = [f"parser: {report['parser']} (judgements of the {report['judged_as']} outputs)",
             f"{'':<14}{'n':>5}{'wrong':>7}{'error':>8}{'unjudged':>10}"]
    for title, table in (("rule", report["per_rule"]), ("part", report["per_part"])):
        lines.append(f"-- per {title}")
        for name, row in table.items():
            lines.append(f"{name:<14}{row['n']:>5}{row['wrong']:>7}{row['wrong'] / row['n']:>8.1%}{row['unjudged']:>10}")
    for id_, judged, ours in report["unjudged"]:
        lines.append(f"unjudged {id_}: judged {judged!r}, now {ours!r}")
    return "\n".join(lines)


def load_sources(source_dir) -> dict[str, dict]:
    """The OpenBookQA items of every split, by id."""
    return {str(r["id"]): r for r in load_openbookqa("all", directory=source_dir)}


@command
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", default=str(ROOT / "neqa.jsonl"), help="the published NeQA release (JSONL)")
    ap.add_argument("--sources", default=str(ROOT / "sources" / "openbookqa"),
                    help="folder with the OpenBookQA train/dev/test.jsonl")
    ap.add_argument("--parser", choices=("auto", "spacy", "fallback"), default="auto",
                    help="root-verb finder for not/do (default: spaCy when installed)")
    ap.add_argument("--json", help="also write the report as JSON here")
    ap.add_argument("--sample", help="instead: the error rates on this hand-judged sample (JSONL)")
    args = ap.parse_args(argv)
    if args.json:
        check_outputs([args.json], [args.reference, args.sample])
    try:
        set_parser(args.parser)
    except RuntimeError as e:
        raise UsageError(str(e)) from None
    if args.sample:
        judged = sample_report(args.sample)
        print(format_sample(judged))
        if args.json:
            write_json(args.json, judged)
        return 1 if judged["unjudged"] else 0
    report = check_against_reference(args.reference, load_sources(args.sources))
    print(format_report(report))
    if args.json:
        write_json(args.json, report.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
