//! Every incident action as pure planning over the loaded incident: who may do it, what the
//! runbook allows, and what comes next. Each action returns the [`Write`] to make, or one
//! [`Refusal`]. The CLI, the web pages and the API call these and nothing else decides a rule:
//! the CLI maps a refusal to an exit code, the web to an HTTP status.
//!
//! The rules, in one place:
//! - opening records the gate answers in the order the runbook asks them (answers to steps the
//!   path does not reach are not recorded), and the agent who opens is the assignee;
//! - an answer is for the step the runbook asks now; an earlier step is changed with a
//!   revision, which keeps the old records (marked superseded) and re-walks from there;
//! - an escalation goes to a higher level, with a known kind (required for L2, the runbook's
//!   own when it reached one);
//! - closing takes the outcome the runbook reached, or another one with a stated reason;
//! - working an incident (answer, revise, escalate, close, status, take, assign) needs a level
//!   at or above the incident's and an incident that is not closed; a note is allowed to
//!   every agent at any time (L1 keeps following what they escalated).

use incidents::{Incident, NewEscalation, NewIncident, NewStepRecord, StepRecord, Write};
use runbook::{Ending, Fact, Facts, Level, RunbookSet, Source, Status};
use serde::Deserialize;

use crate::{Start, evaluate, evaluate_at, facts_of, level_of, runbook_with_entry};

/// Who acts, and the highest incident level they work.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub name: &'a str,
    pub level: Level,
}

/// The incident an action is planned on, as loaded.
#[derive(Debug, Clone, Copy)]
pub struct Case<'a> {
    pub incident: &'a Incident,
    pub steps: &'a [StepRecord],
}

/// Why an action was refused; nothing was written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("incident {id} is closed")]
    Closed { id: i64 },
    /// `what` names the action refused, e.g. "working an L2 incident".
    #[error("{what}")]
    Forbidden { who: String, what: String },
    #[error(
        "someone else changed this incident first (incident {id} is now at version {current}); reload it and try again"
    )]
    Stale { id: i64, current: i64 },
    #[error("{0} is required")]
    Required(&'static str),
    #[error("unknown runbook {0}")]
    UnknownRunbook(String),
    #[error("unknown step {0}")]
    UnknownStep(String),
    #[error("{answer} is not an answer of {step} (allowed: {})", allowed.join(", "))]
    NotAnAnswer {
        step: String,
        answer: String,
        allowed: Vec<String>,
    },
    #[error("{}", not_asked(step, asked.as_deref(), *answered))]
    NotAsked {
        step: String,
        asked: Option<String>,
        answered: bool,
    },
    #[error("{step} has no answer to revise")]
    NotAnswered { step: String },
    #[error("unknown level {0} (expected L2 or L3)")]
    UnknownLevel(String),
    #[error("an {from} incident can only be escalated to a higher level, not {to}")]
    NotHigher { from: String, to: String },
    #[error("an escalation to L2 needs a kind ({})", known.join(" or "))]
    KindRequired { known: Vec<String> },
    #[error("unknown escalation kind {kind} (known: {})", known.join(", "))]
    UnknownKind { kind: String, known: Vec<String> },
    #[error(
        "the runbook has reached no outcome yet; answer its steps, or close with another outcome and a reason"
    )]
    NoOutcome,
    #[error("unknown outcome {0}")]
    UnknownOutcome(String),
    #[error("{}; closing with {asked} instead needs a reason", match reached {
        Some(r) => format!("the runbook reached {r}"),
        None => "the runbook has reached no outcome yet".to_owned(),
    })]
    OutcomeNeedsReason {
        reached: Option<String>,
        asked: String,
    },
    #[error("cannot set status {0} here (use waiting_user or open)")]
    UnknownStatus(String),
    #[error("no user named {0}")]
    UnknownUser(String),
    #[error("the runbook {runbook} cannot be followed with these answers: {reason}")]
    Runbook { runbook: String, reason: String },
}

fn not_asked(step: &str, asked: Option<&str>, answered: bool) -> String {
    let now = match asked {
        Some(a) => format!("the runbook now asks {a}, not {step}; reload the incident"),
        None => format!("the runbook asks nothing now (it reached an ending), not {step}"),
    };
    if answered {
        format!("{now}; to change the answer of {step}, revise it")
    } else {
        now
    }
}

/// The four families of refusal: what an interface maps to its own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The incident, step, runbook, outcome or user named does not exist.
    NotFound,
    /// The actor's level does not allow it.
    Forbidden,
    /// The incident changed, or the runbook is elsewhere now: reload and retry.
    Conflict,
    /// The input is not acceptable.
    Invalid,
}

impl Refusal {
    pub fn kind(&self) -> RefusalKind {
        match self {
            Refusal::UnknownRunbook(_) | Refusal::UnknownStep(_) | Refusal::UnknownUser(_) => {
                RefusalKind::NotFound
            }
            Refusal::Forbidden { .. } => RefusalKind::Forbidden,
            Refusal::Stale { .. }
            | Refusal::Closed { .. }
            | Refusal::NotAsked { .. }
            | Refusal::NoOutcome => RefusalKind::Conflict,
            _ => RefusalKind::Invalid,
        }
    }

    /// The version current now, for a conflict caused by a stale read.
    pub fn current_version(&self) -> Option<i64> {
        match self {
            Refusal::Stale { current, .. } => Some(*current),
            _ => None,
        }
    }
}

type Result<T> = std::result::Result<T, Refusal>;

fn walk_error(runbook: &str, e: runbook::Error) -> Refusal {
    Refusal::Runbook {
        runbook: runbook.to_owned(),
        reason: e.to_string(),
    }
}

fn trimmed(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// May `actor` work `incident` (answer, revise, escalate, close, change its status)?
pub fn can_work(actor: &Actor<'_>, incident: &Incident) -> bool {
    incident.status != incidents::Status::Closed && level_of(incident) <= actor.level
}

fn require_work(actor: &Actor<'_>, case: &Case<'_>, expected: Option<i64>) -> Result<()> {
    let inc = case.incident;
    if let Some(v) = expected
        && v != inc.version
    {
        return Err(Refusal::Stale {
            id: inc.id,
            current: inc.version,
        });
    }
    if inc.status == incidents::Status::Closed {
        return Err(Refusal::Closed { id: inc.id });
    }
    if level_of(inc) > actor.level {
        return Err(Refusal::Forbidden {
            who: actor.name.to_owned(),
            what: format!("working an {} incident", inc.level),
        });
    }
    Ok(())
}

fn check_answer(set: &RunbookSet, step: &str, answer: &str) -> Result<String> {
    let Some((rb, def)) = set.step(step) else {
        return Err(Refusal::UnknownStep(step.to_owned()));
    };
    if def.answer(answer).is_none() {
        return Err(Refusal::NotAnAnswer {
            step: step.to_owned(),
            answer: answer.to_owned(),
            allowed: def
                .allowed_answers()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        });
    }
    Ok(rb.id.clone())
}

/// Opening an incident.
#[derive(Debug, Clone, Default)]
pub struct Open {
    pub account: String,
    pub reporter: String,
    pub description: String,
    /// The runbook to follow (`None`: the default runbook).
    pub runbook: Option<String>,
    /// Gate answers known at opening, step id -> answer, in any order.
    pub gate: Vec<(String, String)>,
}

/// The runbook incidents follow unless told otherwise.
pub const DEFAULT_RUNBOOK: &str = "user-cant-call";

pub fn open(set: &RunbookSet, actor: &Actor<'_>, req: Open) -> Result<Write> {
    let account = req.account.trim();
    if account.is_empty() {
        return Err(Refusal::Required("the account"));
    }
    let reporter = match req.reporter.trim() {
        "" => account,
        r => r,
    };
    let runbook_id = trimmed(req.runbook).unwrap_or_else(|| DEFAULT_RUNBOOK.to_owned());
    let Some(rb) = set.get(&runbook_id) else {
        return Err(Refusal::UnknownRunbook(runbook_id));
    };
    let gate: Vec<(String, String)> = req
        .gate
        .into_iter()
        .map(|(s, a)| (s.trim().to_owned(), a.trim().to_owned()))
        .filter(|(_, a)| !a.is_empty())
        .collect();
    for (step, answer) in &gate {
        check_answer(set, step, answer)?;
    }
    // In the order the runbook asks them: an answer is recorded when the walk reaches its step.
    let start = Start {
        runbook: &runbook_id,
        entry: None,
    };
    let mut facts = Facts::new();
    let mut steps = Vec::new();
    for _ in 0..gate.len() {
        let eval =
            evaluate_at(set, start, &facts, Level::L1).map_err(|e| walk_error(&runbook_id, e))?;
        let Status::NeedsAnswer { runbook, step } = eval.status else {
            break;
        };
        let Some((_, answer)) = gate.iter().find(|(s, _)| *s == step) else {
            break;
        };
        facts.insert(step.clone(), Fact::new(answer.clone(), Source::Agent));
        let next = evaluate_at(set, start, &facts, Level::L1)
            .map_err(|e| walk_error(&runbook_id, e))?
            .next_step()
            .map(str::to_owned);
        steps.push((
            NewStepRecord {
                runbook,
                step,
                answer: answer.clone(),
                source: Source::Agent.as_str().to_owned(),
                evidence: serde_json::Value::Null,
                note: Some("answered when the incident was opened".to_owned()),
                proposed: None,
            },
            next,
        ));
    }
    Ok(Write::Open {
        incident: NewIncident {
            account: account.to_owned(),
            reporter: reporter.to_owned(),
            description: req.description.trim().to_owned(),
            runbook: runbook_id,
            level: Level::L1.to_string(),
            current_step: Some(rb.start.clone()),
        },
        steps,
        assignee: Some(actor.name.to_owned()),
    })
}

/// Answering the step the runbook asks now.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The version the agent read (`None`: the one loaded).
    pub version: Option<i64>,
    /// The step answered (`None`: the one asked now).
    pub step: Option<String>,
    pub answer: String,
    pub source: Source,
    pub evidence: serde_json::Value,
    pub note: Option<String>,
    /// The answer an automated check proposed for this step, if one did.
    pub proposed: Option<String>,
}

impl Answer {
    /// An automated check's answer to `step`, which it proposed itself.
    pub fn automated(
        version: i64,
        step: String,
        answer: String,
        evidence: serde_json::Value,
        note: String,
    ) -> Answer {
        Answer {
            version: Some(version),
            step: Some(step),
            proposed: Some(answer.clone()),
            answer,
            source: Source::Automated,
            evidence,
            note: Some(note),
        }
    }
}

pub fn answer(set: &RunbookSet, actor: &Actor<'_>, case: Case<'_>, req: Answer) -> Result<Write> {
    require_work(actor, &case, req.version)?;
    let inc = case.incident;
    let mut facts = facts_of(case.steps);
    let before = evaluate(set, inc, &facts).map_err(|e| walk_error(&inc.runbook, e))?;
    let asked = before.next_step().map(str::to_owned);
    let step = match trimmed(req.step) {
        Some(s) => s,
        None => asked.clone().ok_or_else(|| Refusal::NotAsked {
            step: "(the next step)".to_owned(),
            asked: None,
            answered: false,
        })?,
    };
    let runbook = check_answer(set, &step, req.answer.trim())?;
    if asked.as_deref() != Some(step.as_str()) {
        return Err(Refusal::NotAsked {
            answered: facts.get(&step).is_some(),
            step,
            asked,
        });
    }
    let value = req.answer.trim().to_owned();
    facts.insert(step.clone(), Fact::new(value.clone(), req.source));
    let next_step = evaluate(set, inc, &facts)
        .map_err(|e| walk_error(&inc.runbook, e))?
        .next_step()
        .map(str::to_owned);
    Ok(Write::Answer {
        record: NewStepRecord {
            runbook,
            step,
            answer: value,
            source: req.source.as_str().to_owned(),
            evidence: req.evidence,
            note: trimmed(req.note),
            proposed: trimmed(req.proposed),
        },
        next_step,
    })
}

/// Revising an earlier answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Revise {
    #[serde(default)]
    pub version: Option<i64>,
    pub step: String,
    pub answer: String,
    /// Why the answer changes (kept with the new record).
    #[serde(default)]
    pub note: Option<String>,
}

/// Revises the current answer of an earlier step: that record and every later one are kept
/// but superseded, and the runbook is walked again from the new answer (later steps are asked
/// again).
pub fn revise(set: &RunbookSet, actor: &Actor<'_>, case: Case<'_>, req: Revise) -> Result<Write> {
    require_work(actor, &case, req.version)?;
    let inc = case.incident;
    let step = req.step.trim().to_owned();
    let value = req.answer.trim().to_owned();
    let runbook = check_answer(set, &step, &value)?;
    let Some(old) = case
        .steps
        .iter()
        .rev()
        .find(|r| r.is_current() && r.step == step)
    else {
        return Err(Refusal::NotAnswered { step });
    };
    let kept: Vec<StepRecord> = case
        .steps
        .iter()
        .filter(|r| r.id < old.id)
        .cloned()
        .collect();
    let mut facts = facts_of(&kept);
    facts.insert(step.clone(), Fact::new(value.clone(), Source::Agent));
    let next_step = evaluate(set, inc, &facts)
        .map_err(|e| walk_error(&inc.runbook, e))?
        .next_step()
        .map(str::to_owned);
    let note = trimmed(req.note).unwrap_or_else(|| format!("revised from {}", old.answer));
    Ok(Write::Revise {
        supersedes: old.id,
        record: NewStepRecord {
            runbook,
            step,
            answer: value,
            source: Source::Agent.as_str().to_owned(),
            evidence: serde_json::json!({ "revises": { "record": old.id, "answer": old.answer, "source": old.source, "actor": old.actor } }),
            note: Some(note),
            proposed: None,
        },
        next_step,
    })
}

/// An internal note: any agent, any time.
pub fn note(_actor: &Actor<'_>, _case: Case<'_>, text: &str) -> Result<Write> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Refusal::Required("the note"));
    }
    Ok(Write::Note {
        text: text.to_owned(),
    })
}

/// Handing the incident to a higher level.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Escalate {
    #[serde(default)]
    pub version: Option<i64>,
    /// "L2" or "L3" (any case); by default the level the runbook escalates to, else the next.
    #[serde(default, rename = "to_level")]
    pub to: Option<String>,
    /// The escalation kind; by default the runbook's.
    #[serde(default)]
    pub kind: Option<String>,
    pub reason: String,
}

/// Every escalation kind of the runbook set, sorted.
pub fn known_kinds(set: &RunbookSet) -> Vec<String> {
    let mut kinds: Vec<String> = set
        .iter()
        .flat_map(|rb| rb.entries.keys().cloned())
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

pub fn escalate(
    set: &RunbookSet,
    actor: &Actor<'_>,
    case: Case<'_>,
    req: Escalate,
) -> Result<Write> {
    require_work(actor, &case, req.version)?;
    let inc = case.incident;
    let reason = req.reason.trim();
    if reason.is_empty() {
        return Err(Refusal::Required("the reason for the escalation"));
    }
    let facts = facts_of(case.steps);
    let ev = evaluate(set, inc, &facts).map_err(|e| walk_error(&inc.runbook, e))?;
    let (suggested_level, suggested_kind) = match ev.ending() {
        Some(Ending::Escalated { level, kind }) => (Some(*level), kind.clone()),
        _ => (None, None),
    };
    let current = level_of(inc);
    let to = match trimmed(req.to) {
        Some(t) => t
            .parse::<Level>()
            .ok()
            .filter(|l| *l >= Level::L1)
            .ok_or(Refusal::UnknownLevel(t))?,
        None => suggested_level
            .filter(|l| *l > current)
            .unwrap_or(if current <= Level::L1 {
                Level::L2
            } else {
                Level::L3
            }),
    };
    if to <= current {
        return Err(Refusal::NotHigher {
            from: inc.level.clone(),
            to: to.to_string(),
        });
    }
    let kind = trimmed(req.kind).or(suggested_kind);
    match &kind {
        Some(k) if runbook_with_entry(set, &inc.runbook, k).is_none() => {
            return Err(Refusal::UnknownKind {
                kind: k.clone(),
                known: known_kinds(set),
            });
        }
        None if to == Level::L2 => {
            return Err(Refusal::KindRequired {
                known: known_kinds(set),
            });
        }
        _ => {}
    }
    // Where the higher level picks the incident up: the walk of the incident as it will be
    // stored (its new level and kind).
    let mut escalated = inc.clone();
    escalated.level = to.to_string();
    escalated.escalation_kind = kind.clone();
    let next_step = evaluate(set, &escalated, &facts)
        .map_err(|e| walk_error(&inc.runbook, e))?
        .next_step()
        .map(str::to_owned);
    Ok(Write::Escalate {
        escalation: NewEscalation {
            to_level: to.to_string(),
            kind,
            reason: reason.to_owned(),
        },
        next_step,
    })
}

/// Closing.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Close {
    #[serde(default)]
    pub version: Option<i64>,
    /// The outcome (`None`: the one the runbook reached).
    #[serde(default)]
    pub outcome: Option<String>,
    /// Why another outcome than the one reached (required then).
    #[serde(default)]
    pub reason: Option<String>,
    /// The closing note everyone sees.
    #[serde(default)]
    pub note: Option<String>,
}

/// The outcome the incident's runbook walk reached, if it reached one.
pub fn reached_outcome(set: &RunbookSet, case: Case<'_>) -> Option<String> {
    let ev = evaluate(set, case.incident, &facts_of(case.steps)).ok()?;
    match ev.ending() {
        Some(Ending::Outcome { outcome, .. }) => Some(outcome.clone()),
        _ => None,
    }
}

pub fn close(set: &RunbookSet, actor: &Actor<'_>, case: Case<'_>, req: Close) -> Result<Write> {
    require_work(actor, &case, req.version)?;
    let reached = reached_outcome(set, case);
    let asked = trimmed(req.outcome);
    let reason = trimmed(req.reason);
    let outcome = match (asked, &reached) {
        (None, Some(r)) => r.clone(),
        (None, None) => return Err(Refusal::NoOutcome),
        (Some(a), _) => a,
    };
    if !set.iter().any(|rb| rb.outcome(&outcome).is_some()) {
        return Err(Refusal::UnknownOutcome(outcome));
    }
    let overriding = if reached.as_deref() == Some(outcome.as_str()) {
        None
    } else {
        match reason {
            Some(r) => Some((reached.clone(), r)),
            None => {
                return Err(Refusal::OutcomeNeedsReason {
                    reached,
                    asked: outcome,
                });
            }
        }
    };
    Ok(Write::Close {
        outcome,
        note: trimmed(req.note),
        overriding,
    })
}

/// Taking the incident: it becomes the actor's, and an escalated one is worked again.
pub fn take(actor: &Actor<'_>, case: Case<'_>, version: Option<i64>) -> Result<Write> {
    require_work(actor, &case, version)?;
    Ok(Write::Take {
        assignee: actor.name.to_owned(),
    })
}

/// Giving the incident to someone (`None`: nobody); `exists` says whether a user exists.
pub fn assign(
    actor: &Actor<'_>,
    case: Case<'_>,
    version: Option<i64>,
    assignee: Option<String>,
    exists: impl Fn(&str) -> bool,
) -> Result<Write> {
    require_work(actor, &case, version)?;
    let assignee = trimmed(assignee);
    if let Some(a) = &assignee
        && !exists(a)
    {
        return Err(Refusal::UnknownUser(a.clone()));
    }
    Ok(Write::Assign { assignee })
}

/// Waiting for the user, or back to work; closing and escalating have their own actions.
pub fn status(
    actor: &Actor<'_>,
    case: Case<'_>,
    version: Option<i64>,
    status: &str,
) -> Result<Write> {
    require_work(actor, &case, version)?;
    let status = match status.trim() {
        "waiting_user" => incidents::Status::WaitingUser,
        "open" => incidents::Status::Open,
        other => return Err(Refusal::UnknownStatus(other.to_owned())),
    };
    Ok(Write::Status { status })
}

/// An action on an incident that exists, for callers that hand actions on (the web's pages
/// and API): [`plan`] routes it to its rule.
#[derive(Debug, Clone)]
pub enum Action {
    Answer(Answer),
    Revise(Revise),
    Note(String),
    Escalate(Escalate),
    Close(Close),
    Take {
        version: Option<i64>,
    },
    Status {
        version: Option<i64>,
        status: String,
    },
}

impl Action {
    /// The version of the incident the agent read, when the action carries one (a note does
    /// not need it).
    pub fn version(&self) -> Option<i64> {
        match self {
            Action::Answer(a) => a.version,
            Action::Revise(r) => r.version,
            Action::Escalate(e) => e.version,
            Action::Close(c) => c.version,
            Action::Take { version } | Action::Status { version, .. } => *version,
            Action::Note(_) => None,
        }
    }
}

/// Plans `action` with the rule that owns it.
pub fn plan(set: &RunbookSet, actor: &Actor<'_>, case: Case<'_>, action: Action) -> Result<Write> {
    match action {
        Action::Answer(a) => answer(set, actor, case, a),
        Action::Revise(r) => revise(set, actor, case, r),
        Action::Note(text) => note(actor, case, &text),
        Action::Escalate(e) => escalate(set, actor, case, e),
        Action::Close(c) => close(set, actor, case, c),
        Action::Take { version } => take(actor, case, version),
        Action::Status { version, status } => self::status(actor, case, version, &status),
    }
}
