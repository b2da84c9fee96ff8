//! Reading runbook TOML files and validating them, with a file:line:column for every problem.
//!
//! Files are first deserialized into "raw" structs that keep the byte span of every value
//! (`toml::Spanned`), then checked as a whole set, because references (redirects, duplicate
//! step ids, escalation entries) cross files.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::model::{
    AnswerDef, Disposition, EscalationDef, Level, OutcomeDef, Runbook, RunbookSet, Step, Target,
};

/// Which validation rule a [`Diagnostic`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// Not TOML, or not the runbook format (missing or unknown field, wrong type).
    Syntax,
    /// Two runbooks with the same id.
    DuplicateRunbook,
    /// Two steps with the same id, in one file or across files.
    DuplicateStep,
    /// Two answers of one step with the same value.
    DuplicateAnswer,
    /// Two outcomes of one runbook with the same id.
    DuplicateOutcome,
    /// A level that is not gate, l1, l2 or l3.
    UnknownLevel,
    /// A disposition that is not one of the known ones.
    UnknownDisposition,
    /// A `next` or `start` that names no step of the runbook.
    UnknownStep,
    /// A `redirect` that names no runbook of the set.
    UnknownRunbook,
    /// An `outcome` that the runbook does not define.
    UnknownOutcome,
    /// An `[entries]` value that names no step of the set.
    UnknownEntryStep,
    /// An escalation whose kind has no entry in the runbook.
    UnknownEscalationKind,
    /// An escalation to gate or l1, to l2 without a kind, or a kind without escalation.
    InvalidEscalation,
    /// A default that is not one of the step's answers.
    UnknownDefault,
    /// A `check` that names no automated check dialtone has.
    UnknownCheck,
    /// A step without answers.
    NoAnswers,
    /// An answer that leads nowhere.
    AnswerNoBranch,
    /// An answer with more than one of next, outcome, escalate, redirect.
    AnswerManyBranches,
    /// A step not reachable from the runbook's start or any escalation entry.
    UnreachableStep,
    /// Steps that loop among themselves and never reach an outcome, escalation or redirect.
    LoopWithoutExit,
    /// Guidance for the agent is missing: an outcome without `what_to_do` or `tell_user`, an
    /// escalating answer without `tell_user`, an `[entries]` kind without `[escalations.KIND]`
    /// (title and `tell_user`).
    MissingGuidance,
}

/// One problem found in a runbook file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub rule: Rule,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for Diagnostic {}

// ---------------------------------------------------------------------------------------------
// Raw file format.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunbook {
    id: Spanned<String>,
    title: String,
    #[serde(default)]
    description: String,
    start: Spanned<String>,
    #[serde(default)]
    entries: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    escalations: BTreeMap<String, Spanned<RawEscalation>>,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    steps: Vec<RawStep>,
    #[serde(default)]
    outcomes: Vec<RawOutcome>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: Spanned<String>,
    level: Spanned<String>,
    title: String,
    question: String,
    instruction: Option<String>,
    check: Option<Spanned<String>>,
    note: Option<String>,
    default: Option<Spanned<String>>,
    #[serde(default)]
    answers: Vec<RawAnswer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    value: Spanned<String>,
    label: String,
    next: Option<Spanned<String>>,
    outcome: Option<Spanned<String>>,
    escalate: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    redirect: Option<Spanned<String>>,
    tell_user: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEscalation {
    title: Option<String>,
    tell_user: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutcome {
    id: Spanned<String>,
    title: String,
    meaning: String,
    disposition: Spanned<String>,
    what_to_do: Option<String>,
    tell_user: Option<String>,
}

/// A guidance text that is present and not blank.
fn given(text: Option<&String>) -> Option<&String> {
    text.filter(|t| !t.trim().is_empty())
}

#[derive(Deserialize)]
struct IdOnly {
    id: Option<String>,
}

/// The `id` of a runbook file, if it parses that far.
pub(crate) fn peek_id(text: &str) -> Option<String> {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| toml::Value::Table(t).try_into::<IdOnly>().ok())
        .and_then(|i| i.id)
}

// ---------------------------------------------------------------------------------------------
// Locations.

/// Turns byte offsets into 1-based line and character column.
struct Locator<'a> {
    file: &'a str,
    text: &'a str,
}

impl Locator<'_> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        // An offset inside a multi-byte character is rounded down to its start.
        let mut at = offset;
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        let before = &self.text[..at];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn diag(&self, span: &Range<usize>, rule: Rule, message: String) -> Diagnostic {
        let (line, column) = self.position(span.start);
        Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            rule,
            message,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading.

struct Parsed<'a> {
    loc: Locator<'a>,
    raw: RawRunbook,
}

pub(crate) fn load(sources: &[(String, String)]) -> Result<RunbookSet, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut parsed = Vec::new();
    for (file, text) in sources {
        let loc = Locator { file, text };
        match toml::from_str::<RawRunbook>(text) {
            Ok(raw) => parsed.push(Parsed { loc, raw }),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                diags.push(loc.diag(&span, Rule::Syntax, e.message().trim().to_owned()));
            }
        }
    }
    let runbooks = check(&parsed, &mut diags);
    if diags.is_empty() {
        Ok(RunbookSet::new(runbooks))
    } else {
        Err(diags)
    }
}

/// Where a step was defined, for cross-file checks.
struct StepSite<'a> {
    runbook: usize,
    loc: &'a Locator<'a>,
    span: Range<usize>,
}

fn check(parsed: &[Parsed<'_>], diags: &mut Vec<Diagnostic>) -> Vec<Runbook> {
    // Pass 1: ids that others refer to (runbooks, steps), with duplicates.
    let mut runbook_ids: HashMap<&str, usize> = HashMap::new();
    let mut steps: HashMap<&str, StepSite<'_>> = HashMap::new();
    for (ri, p) in parsed.iter().enumerate() {
        let id = p.raw.id.get_ref();
        if let Some(&first) = runbook_ids.get(id.as_str()) {
            let f = &parsed[first];
            let (l, c) = f.loc.position(f.raw.id.span().start);
            diags.push(p.loc.diag(
                &p.raw.id.span(),
                Rule::DuplicateRunbook,
                format!(
                    "duplicate runbook id `{id}` (first defined at {}:{l}:{c})",
                    f.loc.file
                ),
            ));
        } else {
            runbook_ids.insert(id, ri);
        }
        for step in &p.raw.steps {
            let sid = step.id.get_ref();
            if let Some(first) = steps.get(sid.as_str()) {
                let (l, c) = first.loc.position(first.span.start);
                diags.push(p.loc.diag(
                    &step.id.span(),
                    Rule::DuplicateStep,
                    format!(
                        "duplicate step id `{sid}` (first defined at {}:{l}:{c})",
                        first.loc.file
                    ),
                ));
            } else {
                steps.insert(
                    sid,
                    StepSite {
                        runbook: ri,
                        loc: &p.loc,
                        span: step.id.span(),
                    },
                );
            }
        }
    }

    // Pass 2: each runbook on its own, building the model.
    let mut out = Vec::new();
    for p in parsed {
        out.push(check_runbook(p, &runbook_ids, &steps, diags));
    }

    // Pass 3: graph properties over the whole set.
    check_graph(parsed, &out, &steps, diags);
    out
}

fn check_runbook(
    p: &Parsed<'_>,
    runbook_ids: &HashMap<&str, usize>,
    steps: &HashMap<&str, StepSite<'_>>,
    diags: &mut Vec<Diagnostic>,
) -> Runbook {
    let raw = &p.raw;
    let loc = &p.loc;
    let rb_id = raw.id.get_ref();
    // Looked up in this file's own steps, so a step id also defined elsewhere (already
    // reported as a duplicate) does not cascade into "unknown step" diagnostics.
    let in_this = |id: &str| raw.steps.iter().any(|s| s.id.get_ref() == id);

    if !in_this(raw.start.get_ref()) {
        diags.push(loc.diag(
            &raw.start.span(),
            Rule::UnknownStep,
            format!(
                "start step `{}` is not a step of runbook `{rb_id}`",
                raw.start.get_ref()
            ),
        ));
    }
    for (kind, step) in &raw.entries {
        if !steps.contains_key(step.get_ref().as_str()) {
            diags.push(loc.diag(
                &step.span(),
                Rule::UnknownEntryStep,
                format!("entry `{kind}` points to unknown step `{}`", step.get_ref()),
            ));
        }
        if !raw.escalations.contains_key(kind) {
            diags.push(loc.diag(
                &step.span(),
                Rule::MissingGuidance,
                format!(
                    "entry `{kind}` has no [escalations.{kind}] (its title and what to tell the user while it is worked)"
                ),
            ));
        }
    }
    let mut escalations = BTreeMap::new();
    for (kind, e) in &raw.escalations {
        if !raw.entries.contains_key(kind) {
            diags.push(loc.diag(
                &e.span(),
                Rule::UnknownEscalationKind,
                format!("[escalations.{kind}] names no entry of runbook `{rb_id}`"),
            ));
        }
        for (field, text) in [
            ("title", &e.get_ref().title),
            ("tell_user", &e.get_ref().tell_user),
        ] {
            if given(text.as_ref()).is_none() {
                diags.push(loc.diag(
                    &e.span(),
                    Rule::MissingGuidance,
                    format!("[escalations.{kind}] has no `{field}`"),
                ));
            }
        }
        escalations.insert(
            kind.clone(),
            EscalationDef {
                title: e.get_ref().title.clone().unwrap_or_default(),
                tell_user: e.get_ref().tell_user.clone().unwrap_or_default(),
            },
        );
    }

    let mut outcomes = Vec::new();
    let mut outcome_ids = HashSet::new();
    for o in &raw.outcomes {
        if !outcome_ids.insert(o.id.get_ref().as_str()) {
            diags.push(loc.diag(
                &o.id.span(),
                Rule::DuplicateOutcome,
                format!(
                    "duplicate outcome `{}` in runbook `{rb_id}`",
                    o.id.get_ref()
                ),
            ));
        }
        let disposition = Disposition::ALL
            .into_iter()
            .find(|d| d.as_str() == o.disposition.get_ref());
        if disposition.is_none() {
            let known: Vec<&str> = Disposition::ALL.iter().map(|d| d.as_str()).collect();
            diags.push(loc.diag(
                &o.disposition.span(),
                Rule::UnknownDisposition,
                format!(
                    "unknown disposition `{}` (expected one of {})",
                    o.disposition.get_ref(),
                    known.join(", ")
                ),
            ));
        }
        for (field, text, what) in [
            ("what_to_do", &o.what_to_do, "what the agent does"),
            ("tell_user", &o.tell_user, "what to tell the user"),
        ] {
            if given(text.as_ref()).is_none() {
                diags.push(loc.diag(
                    &o.id.span(),
                    Rule::MissingGuidance,
                    format!("outcome `{}` has no `{field}` ({what})", o.id.get_ref()),
                ));
            }
        }
        outcomes.push(OutcomeDef {
            id: o.id.get_ref().clone(),
            title: o.title.clone(),
            meaning: o.meaning.clone(),
            disposition: disposition.unwrap_or(Disposition::Closed),
            what_to_do: o.what_to_do.clone().unwrap_or_default(),
            tell_user: o.tell_user.clone().unwrap_or_default(),
        });
    }

    let mut model_steps = Vec::new();
    for s in &raw.steps {
        let sid = s.id.get_ref();
        let level = parse_level(&s.level, loc, diags).unwrap_or(Level::L1);
        if s.answers.is_empty() {
            diags.push(loc.diag(
                &s.id.span(),
                Rule::NoAnswers,
                format!("step `{sid}` has no answers"),
            ));
        }
        let mut values = HashSet::new();
        let mut answers = Vec::new();
        for a in &s.answers {
            let value = a.value.get_ref();
            if !values.insert(value.as_str()) {
                diags.push(loc.diag(
                    &a.value.span(),
                    Rule::DuplicateAnswer,
                    format!("duplicate answer `{value}` in step `{sid}`"),
                ));
            }
            let target = check_answer(
                sid,
                a,
                rb_id,
                raw,
                &outcome_ids,
                runbook_ids,
                &in_this,
                loc,
                diags,
            );
            let escalates = matches!(target, Target::Escalate { .. });
            match (&a.tell_user, &a.escalate) {
                (Some(t), None) => diags.push(loc.diag(
                    &t.span(),
                    Rule::InvalidEscalation,
                    format!(
                        "answer `{value}` of step `{sid}` has `tell_user` but does not escalate"
                    ),
                )),
                (t, Some(e)) if given(t.as_ref().map(|t| t.get_ref())).is_none() => {
                    diags.push(loc.diag(
                        &e.span(),
                        Rule::MissingGuidance,
                        format!(
                            "answer `{value}` of step `{sid}` escalates but has no `tell_user` (what to tell the user while the escalation is worked)"
                        ),
                    ))
                }
                _ => {}
            }
            answers.push(AnswerDef {
                value: value.clone(),
                label: a.label.clone(),
                target,
                tell_user: a
                    .tell_user
                    .as_ref()
                    .filter(|_| escalates)
                    .map(|t| t.get_ref().clone()),
            });
        }
        if let Some(d) = &s.default
            && !values.contains(d.get_ref().as_str())
        {
            diags.push(loc.diag(
                &d.span(),
                Rule::UnknownDefault,
                format!("default `{}` is not an answer of step `{sid}`", d.get_ref()),
            ));
        }
        let check = match &s.check {
            Some(c) => match c.get_ref().parse::<crate::model::Check>() {
                Ok(check) => Some(check),
                Err(_) => {
                    diags.push(loc.diag(
                        &c.span(),
                        Rule::UnknownCheck,
                        format!(
                            "step `{sid}` names the check `{}`, which dialtone does not have (known: {})",
                            c.get_ref(),
                            crate::model::Check::ALL
                                .iter()
                                .map(|c| c.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                    None
                }
            },
            None => None,
        };
        model_steps.push(Step {
            id: sid.clone(),
            level,
            title: s.title.clone(),
            question: s.question.clone(),
            instruction: s.instruction.clone(),
            check,
            answers,
            note: s.note.clone(),
            default: s.default.as_ref().map(|d| d.get_ref().clone()),
        });
    }

    Runbook {
        id: rb_id.clone(),
        title: raw.title.clone(),
        description: raw.description.clone(),
        start: raw.start.get_ref().clone(),
        entries: raw
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect(),
        escalations,
        steps: model_steps,
        outcomes,
        notes: raw.notes.clone(),
    }
}

fn parse_level(
    raw: &Spanned<String>,
    loc: &Locator<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Level> {
    let found = Level::ALL.into_iter().find(|l| l.as_str() == raw.get_ref());
    if found.is_none() {
        diags.push(loc.diag(
            &raw.span(),
            Rule::UnknownLevel,
            format!(
                "unknown level `{}` (expected gate, l1, l2 or l3)",
                raw.get_ref()
            ),
        ));
    }
    found
}

/// Checks one answer's branch and returns its target (a placeholder when invalid, which is
/// never seen because the set is then rejected).
#[allow(clippy::too_many_arguments)]
fn check_answer(
    sid: &str,
    a: &RawAnswer,
    rb_id: &str,
    raw: &RawRunbook,
    outcome_ids: &HashSet<&str>,
    runbook_ids: &HashMap<&str, usize>,
    in_this: &dyn Fn(&str) -> bool,
    loc: &Locator<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Target {
    let value = a.value.get_ref();
    let branches: Vec<(&str, &Spanned<String>)> = [
        ("next", &a.next),
        ("outcome", &a.outcome),
        ("escalate", &a.escalate),
        ("redirect", &a.redirect),
    ]
    .into_iter()
    .filter_map(|(name, b)| b.as_ref().map(|b| (name, b)))
    .collect();
    let placeholder = Target::Outcome(String::new());
    let Some(&(kind_name, branch)) = branches.first() else {
        diags.push(loc.diag(
            &a.value.span(),
            Rule::AnswerNoBranch,
            format!(
                "answer `{value}` of step `{sid}` has no branch (give one of next, outcome, escalate, redirect)"
            ),
        ));
        return placeholder;
    };
    if let Some(&(second, span)) = branches.get(1) {
        diags.push(loc.diag(
            &span.span(),
            Rule::AnswerManyBranches,
            format!(
                "answer `{value}` of step `{sid}` has more than one branch ({kind_name} and {second})"
            ),
        ));
        return placeholder;
    }
    if kind_name != "escalate"
        && let Some(kind) = &a.kind
    {
        diags.push(loc.diag(
            &kind.span(),
            Rule::InvalidEscalation,
            format!("answer `{value}` of step `{sid}` has a kind but does not escalate"),
        ));
    }
    let name = branch.get_ref();
    match kind_name {
        "next" => {
            if !in_this(name) {
                diags.push(loc.diag(
                    &branch.span(),
                    Rule::UnknownStep,
                    format!("unknown step `{name}` (not a step of runbook `{rb_id}`)"),
                ));
            }
            Target::Step(name.clone())
        }
        "outcome" => {
            if !outcome_ids.contains(name.as_str()) {
                diags.push(loc.diag(
                    &branch.span(),
                    Rule::UnknownOutcome,
                    format!("unknown outcome `{name}` (not an outcome of runbook `{rb_id}`)"),
                ));
            }
            Target::Outcome(name.clone())
        }
        "redirect" => {
            if !runbook_ids.contains_key(name.as_str()) {
                diags.push(loc.diag(
                    &branch.span(),
                    Rule::UnknownRunbook,
                    format!("unknown runbook `{name}`"),
                ));
            }
            Target::Redirect {
                runbook: name.clone(),
            }
        }
        _ => {
            let Some(level) = parse_level(branch, loc, diags) else {
                return placeholder;
            };
            let kind = a.kind.as_ref().map(|k| k.get_ref().clone());
            match (level, &a.kind) {
                (Level::Gate | Level::L1, _) => diags.push(loc.diag(
                    &branch.span(),
                    Rule::InvalidEscalation,
                    format!("cannot escalate to {level}: escalations go to l2 or l3"),
                )),
                (Level::L2, None) => diags.push(loc.diag(
                    &branch.span(),
                    Rule::InvalidEscalation,
                    format!(
                        "escalation to L2 needs a kind (one of the entries of runbook `{rb_id}`)"
                    ),
                )),
                (Level::L2, Some(k)) if !raw.entries.contains_key(k.get_ref()) => {
                    diags.push(loc.diag(
                        &k.span(),
                        Rule::UnknownEscalationKind,
                        format!(
                            "escalation kind `{}` has no entry in runbook `{rb_id}`",
                            k.get_ref()
                        ),
                    ))
                }
                _ => {}
            }
            Target::Escalate { level, kind }
        }
    }
}

/// Reachability and "loop with no way out", over `next` edges (which never leave a runbook).
fn check_graph(
    parsed: &[Parsed<'_>],
    runbooks: &[Runbook],
    steps: &HashMap<&str, StepSite<'_>>,
    diags: &mut Vec<Diagnostic>,
) {
    // Roots: every start and every entry of every runbook (an entry may point into another
    // runbook, and escalations arrive there).
    let mut seen: HashSet<&str> = HashSet::new();
    let mut todo: Vec<&str> = Vec::new();
    for rb in runbooks {
        todo.push(&rb.start);
        todo.extend(rb.entries.values().map(String::as_str));
    }
    // The first definition of a duplicated id wins, as in `steps`.
    let mut by_id: HashMap<&str, &Step> = HashMap::new();
    for s in runbooks.iter().flat_map(|r| r.steps.iter()) {
        by_id.entry(s.id.as_str()).or_insert(s);
    }
    while let Some(id) = todo.pop() {
        let Some(step) = by_id.get(id) else { continue };
        if !seen.insert(id) {
            continue;
        }
        for a in &step.answers {
            if let Target::Step(n) = &a.target {
                todo.push(n);
            }
        }
    }

    // A step "exits" when some answer ends the runbook, or leads to a step that exits.
    // Fixed point over all steps; the graph is small.
    let mut exits: HashSet<&str> = HashSet::new();
    loop {
        let before = exits.len();
        for step in by_id.values() {
            if exits.contains(step.id.as_str()) {
                continue;
            }
            // A step without answers has its own diagnostic; counting it as an exit keeps
            // the steps before it from being reported as a loop too.
            let out = step.answers.is_empty()
                || step.answers.iter().any(|a| match &a.target {
                    Target::Step(n) => exits.contains(n.as_str()),
                    _ => true,
                });
            if out {
                exits.insert(step.id.as_str());
            }
        }
        if exits.len() == before {
            break;
        }
    }

    for (ri, rb) in runbooks.iter().enumerate() {
        let loc = &parsed[ri].loc;
        let raw_steps = &parsed[ri].raw.steps;
        let mut reported: HashSet<&str> = HashSet::new();
        for (si, step) in rb.steps.iter().enumerate() {
            // Only the first definition of a duplicated id is checked (the others already
            // have their own diagnostic).
            if steps.get(step.id.as_str()).is_none_or(|s| s.runbook != ri)
                || steps[step.id.as_str()].span != raw_steps[si].id.span()
            {
                continue;
            }
            let span = raw_steps[si].id.span();
            if !seen.contains(step.id.as_str()) {
                diags.push(loc.diag(
                    &span,
                    Rule::UnreachableStep,
                    format!(
                        "step `{}` is unreachable (not reached from the start or any entry)",
                        step.id
                    ),
                ));
            }
            if step.answers.is_empty()
                || exits.contains(step.id.as_str())
                || reported.contains(step.id.as_str())
            {
                continue;
            }
            // Follow the first answer until a step repeats: that is the loop to name.
            let mut cycle: Vec<&str> = vec![&step.id];
            let mut at: &Step = step;
            loop {
                let next = at.answers.iter().find_map(|a| match &a.target {
                    Target::Step(n) => by_id.get(n.as_str()).copied(),
                    _ => None,
                });
                let Some(next) = next else { break };
                cycle.push(&next.id);
                if cycle[..cycle.len() - 1].contains(&next.id.as_str()) {
                    break;
                }
                at = next;
            }
            // Everything reachable from here is also stuck: report the loop once.
            let mut stack = vec![step.id.as_str()];
            while let Some(id) = stack.pop() {
                if reported.insert(id)
                    && let Some(s) = by_id.get(id)
                {
                    stack.extend(s.answers.iter().filter_map(|a| match &a.target {
                        Target::Step(n) => Some(n.as_str()),
                        _ => None,
                    }));
                }
            }
            diags.push(loc.diag(
                &span,
                Rule::LoopWithoutExit,
                format!(
                    "loop with no way out: {} never reaches an outcome, escalation or redirect",
                    cycle.join(" -> ")
                ),
            ));
        }
    }
}
