//! The engine: the facts known so far -> the next step to ask, or how the run ended and the path
//! that led there. Pure: no IO, no clock.
//!
//! Walking rules:
//! - each step takes its answer from the facts; with `use_defaults`, an unanswered step that has
//!   a default takes it (source [`Source::Assumed`]); otherwise the walk stops there
//!   ([`Status::NeedsAnswer`]);
//! - an escalation to a level at or below `max_level` continues at the runbook's entry for its
//!   kind; L3 has no entries and always ends the walk;
//! - a redirect continues at the target runbook's start when `follow_redirects`;
//! - reaching a step that is already on the path means its recorded answer sent the run back
//!   (e.g. `l2.client_logs` answered `no_attachment` leads to itself): the step is asked again,
//!   so the walk stops there with `NeedsAnswer` and the facts can never make it spin.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::{Level, Runbook, RunbookSet, Step, Target};
use crate::{Error, Result};

/// Who gave an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An agent answered (possibly relaying the user).
    Agent,
    /// An automated check answered from conclusive evidence.
    Automated,
    /// Nobody answered; the step's default was assumed.
    Assumed,
}

impl Source {
    /// `agent`, `automated` or `assumed` (how the incident store spells it).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Agent => "agent",
            Source::Automated => "automated",
            Source::Assumed => "assumed",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        [Source::Agent, Source::Automated, Source::Assumed]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::UnknownSource(s.to_owned()))
    }
}

/// One answer known for a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub value: String,
    pub source: Source,
}

impl Fact {
    pub fn new(value: impl Into<String>, source: Source) -> Fact {
        Fact {
            value: value.into(),
            source,
        }
    }

    /// An answer given by an agent.
    pub fn agent(value: impl Into<String>) -> Fact {
        Fact::new(value, Source::Agent)
    }

    /// An answer given by an automated check.
    pub fn automated(value: impl Into<String>) -> Fact {
        Fact::new(value, Source::Automated)
    }
}

/// The answers known so far: step id -> latest fact (a later answer replaces an earlier one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Facts(BTreeMap<String, Fact>);

impl Facts {
    pub fn new() -> Facts {
        Facts::default()
    }

    /// Records `fact` for `step`, returning the fact it replaces.
    pub fn insert(&mut self, step: impl Into<String>, fact: Fact) -> Option<Fact> {
        self.0.insert(step.into(), fact)
    }

    pub fn get(&self, step: &str) -> Option<&Fact> {
        self.0.get(step)
    }

    pub fn remove(&mut self, step: &str) -> Option<Fact> {
        self.0.remove(step)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (step id, fact), ordered by step id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Fact)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl<S: Into<String>> FromIterator<(S, Fact)> for Facts {
    fn from_iter<I: IntoIterator<Item = (S, Fact)>>(iter: I) -> Self {
        Facts(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

/// How far a walk may go without stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Escalations to this level or below continue at the entry for their kind.
    pub max_level: Level,
    /// Redirects continue in the target runbook.
    pub follow_redirects: bool,
    /// Unanswered steps with a default take it (source `assumed`).
    pub use_defaults: bool,
}

impl Default for EvalOptions {
    /// The most conservative walk: stop at every hand-over, assume nothing.
    fn default() -> Self {
        EvalOptions {
            max_level: Level::L1,
            follow_redirects: false,
            use_defaults: false,
        }
    }
}

/// One answered step on the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathEntry {
    pub runbook: String,
    pub step: String,
    pub answer: String,
    pub source: Source,
}

/// How a finished walk ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ending", rename_all = "snake_case")]
pub enum Ending {
    Outcome { runbook: String, outcome: String },
    Escalated { level: Level, kind: Option<String> },
    Redirected { runbook: String },
}

/// Where a walk stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// This step has no (usable) answer yet.
    NeedsAnswer {
        runbook: String,
        step: String,
    },
    Finished(Ending),
}

/// The result of a walk: every answered step in order, and where it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    pub path: Vec<PathEntry>,
    pub status: Status,
}

impl Evaluation {
    /// The step waiting for an answer, if the walk is not finished.
    pub fn next_step(&self) -> Option<&str> {
        match &self.status {
            Status::NeedsAnswer { step, .. } => Some(step),
            Status::Finished(_) => None,
        }
    }

    /// How the walk ended, if it did.
    pub fn ending(&self) -> Option<&Ending> {
        match &self.status {
            Status::Finished(e) => Some(e),
            Status::NeedsAnswer { .. } => None,
        }
    }
}

/// Walks `runbook` from its start.
pub fn evaluate(
    set: &RunbookSet,
    runbook: &str,
    facts: &Facts,
    opts: &EvalOptions,
) -> Result<Evaluation> {
    walk(set, &runbook_of(set, runbook)?.start, facts, opts)
}

/// Walks from the step `step_id` (e.g. an escalation entry such as `l2.server_services`), in
/// whichever runbook holds it.
pub fn evaluate_from_step(
    set: &RunbookSet,
    step_id: &str,
    facts: &Facts,
    opts: &EvalOptions,
) -> Result<Evaluation> {
    walk(set, step_id, facts, opts)
}

/// Walks from the entry of `runbook` for the escalation `kind` (e.g. `server_status_check`).
pub fn evaluate_from_entry(
    set: &RunbookSet,
    runbook: &str,
    kind: &str,
    facts: &Facts,
    opts: &EvalOptions,
) -> Result<Evaluation> {
    let entry = entry_step(runbook_of(set, runbook)?, kind)?;
    walk(set, entry, facts, opts)
}

fn runbook_of<'a>(set: &'a RunbookSet, id: &str) -> Result<&'a Runbook> {
    set.get(id)
        .ok_or_else(|| Error::UnknownRunbook(id.to_owned()))
}

fn entry_step<'a>(rb: &'a Runbook, kind: &str) -> Result<&'a str> {
    rb.entries
        .get(kind)
        .map(String::as_str)
        .ok_or_else(|| Error::UnknownEntry {
            runbook: rb.id.clone(),
            kind: kind.to_owned(),
        })
}

fn lookup<'a>(set: &'a RunbookSet, step_id: &str) -> Result<(&'a Runbook, &'a Step)> {
    set.step(step_id)
        .ok_or_else(|| Error::UnknownStep(step_id.to_owned()))
}

fn needs(rb: &Runbook, step: &Step, path: Vec<PathEntry>) -> Evaluation {
    Evaluation {
        path,
        status: Status::NeedsAnswer {
            runbook: rb.id.clone(),
            step: step.id.clone(),
        },
    }
}

fn walk(set: &RunbookSet, first: &str, facts: &Facts, opts: &EvalOptions) -> Result<Evaluation> {
    let (mut rb, mut step) = lookup(set, first)?;
    let mut path = Vec::new();
    let mut visited: HashSet<&str> = HashSet::new();
    loop {
        if !visited.insert(&step.id) {
            return Ok(needs(rb, step, path));
        }
        let (value, source) = match facts.get(&step.id) {
            Some(f) => (f.value.as_str(), f.source),
            None => match (&step.default, opts.use_defaults) {
                (Some(d), true) => (d.as_str(), Source::Assumed),
                _ => return Ok(needs(rb, step, path)),
            },
        };
        let answer = step.answer(value).ok_or_else(|| Error::InvalidAnswer {
            step: step.id.clone(),
            value: value.to_owned(),
            allowed: step.answers.iter().map(|a| a.value.clone()).collect(),
        })?;
        path.push(PathEntry {
            runbook: rb.id.clone(),
            step: step.id.clone(),
            answer: answer.value.clone(),
            source,
        });
        let ending = match &answer.target {
            Target::Step(next) => {
                (rb, step) = lookup(set, next)?;
                continue;
            }
            Target::Outcome(o) => Ending::Outcome {
                runbook: rb.id.clone(),
                outcome: o.clone(),
            },
            Target::Escalate { level, kind } => match kind {
                Some(k) if *level <= opts.max_level && *level < Level::L3 => {
                    (rb, step) = lookup(set, entry_step(rb, k)?)?;
                    continue;
                }
                _ => Ending::Escalated {
                    level: *level,
                    kind: kind.clone(),
                },
            },
            Target::Redirect { runbook } => {
                if opts.follow_redirects {
                    let target = set
                        .get(runbook)
                        .ok_or_else(|| Error::UnknownRunbook(runbook.clone()))?;
                    (rb, step) = lookup(set, &target.start)?;
                    continue;
                }
                Ending::Redirected {
                    runbook: runbook.clone(),
                }
            }
        };
        return Ok(Evaluation {
            path,
            status: Status::Finished(ending),
        });
    }
}
