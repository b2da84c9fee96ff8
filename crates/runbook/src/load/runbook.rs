//! Each runbook on its own: its fields, steps, answers and escalations, checked while the
//! model is built.

use std::collections::{BTreeMap, HashMap, HashSet};

use toml::Spanned;

use super::{Diagnostic, Locator, Parsed, RawAnswer, RawRunbook, Rule, StepSite, given};
use crate::model::{
    AnswerDef, Disposition, EscalationDef, Level, OutcomeDef, Runbook, Step, Target,
};

pub(super) fn check_runbook(
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
