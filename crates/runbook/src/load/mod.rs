//! Reading runbook TOML files and validating them, with a file:line:column for every problem.
//!
//! Files are first deserialized into "raw" structs that keep the byte span of every value
//! (`toml::Spanned`), then checked as a whole set, because references (redirects, duplicate
//! step ids, escalation entries) cross files.

mod graph;
mod runbook;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::model::{Runbook, RunbookSet};
use graph::check_graph;
use runbook::check_runbook;

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
