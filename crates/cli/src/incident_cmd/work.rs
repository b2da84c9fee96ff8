//! `incident work`: the interactive walk. Plain line prompts, so it works in any terminal and
//! through a pipe.

use super::write::{answer_of, perform};
use crate::exit::{self, coded};
use crate::util::Ctx;
use anyhow::Context as _;
use casework::actions::{Action, Close, Escalate};
use incidents::{Incident, Store};
use runbook::{Ending, Level, RunbookSet, Status};
use serde_json::json;
use std::io::{BufRead, Lines, StdinLock, Stdout, Write};

/// What the walk does after a prompt: show the incident again, or end with an exit code.
enum Next {
    Again,
    Stop(u8),
}

/// The terminal: prompts on standard output, answers one line each from standard input.
struct Prompt {
    lines: Lines<StdinLock<'static>>,
    out: Stdout,
}

impl Prompt {
    /// Shows `text` (no newline) and reads one line; `None` at the end of the input.
    fn ask(&mut self, text: &str) -> anyhow::Result<Option<String>> {
        print!("{text}");
        self.out.flush()?;
        Ok(self.lines.next().transpose()?)
    }
}

/// The interactive walk. Plain line prompts, so it works in any terminal and through a pipe.
pub(super) async fn work(
    ctx: &Ctx,
    store: &Store,
    set: &RunbookSet,
    id: i64,
    diag: Option<&diagnosis::Diagnoser>,
) -> anyhow::Result<u8> {
    let mut prompt = Prompt {
        lines: std::io::stdin().lock().lines(),
        out: std::io::stdout(),
    };
    loop {
        let inc = store.get(id).await?;
        if inc.status == incidents::Status::Closed {
            println!(
                "Incident {id} is closed with outcome {}.",
                inc.outcome.as_deref().unwrap_or("?")
            );
            return Ok(exit::OK);
        }
        let steps = store.steps(id).await?;
        let ev = casework::evaluate(set, &inc, &casework::facts_of(&steps))?;
        let walk = Walk {
            ctx,
            store,
            set,
            inc: &inc,
        };
        let next = match ev.status.clone() {
            Status::NeedsAnswer { step, .. } => walk.ask_step(&mut prompt, step, diag).await?,
            Status::Finished(Ending::Outcome { outcome, runbook }) => {
                walk.offer_close(&mut prompt, outcome, &runbook).await?
            }
            Status::Finished(Ending::Escalated { level, kind }) => {
                walk.offer_escalation(&mut prompt, level, kind).await?
            }
            Status::Finished(Ending::Redirected { runbook }) => {
                println!("\nThe runbook says: continue with runbook {runbook}.");
                Next::Stop(exit::OK)
            }
        };
        if let Next::Stop(code) = next {
            return Ok(code);
        }
    }
}

/// One turn of the walk over the incident as it is now.
struct Walk<'a> {
    ctx: &'a Ctx,
    store: &'a Store,
    set: &'a RunbookSet,
    inc: &'a Incident,
}

impl Walk<'_> {
    /// Asks the step's question and records the answer (or the automated check's).
    async fn ask_step(
        &self,
        prompt: &mut Prompt,
        step: String,
        diag: Option<&diagnosis::Diagnoser>,
    ) -> anyhow::Result<Next> {
        let (_, st) = self
            .set
            .step(&step)
            .context("the runbook names a step it does not define")?;
        println!("\n[{}] {} — {}", st.level, st.id, st.title);
        println!("Q: {}", st.question);
        if let Some(i) = &st.instruction {
            println!("Tell the user: {i}");
        }
        if let Some(n) = &st.note {
            println!("Note: {n}");
        }
        for (i, a) in st.answers.iter().enumerate() {
            let to = crate::runbook_cmd::describe_target(&a.target);
            println!("  {}) {:<24} {}  {}", i + 1, a.value, a.label, to);
        }
        let can_check = diag.is_some() && st.check.is_some();
        let question = if can_check {
            "Answer (number or value, c to run the automated check, q to stop): "
        } else {
            "Answer (number or value, q to stop): "
        };
        let Some(line) = prompt.ask(question)? else {
            return Ok(Next::Stop(exit::OK));
        };
        let line = line.trim().to_string();
        if line == "q" || line.is_empty() && st.answers.is_empty() {
            return Ok(Next::Stop(exit::OK));
        }
        if line == "c"
            && let Some(d) = diag.filter(|_| can_check)
        {
            self.run_check(prompt, d, step).await?;
            return Ok(Next::Again);
        }
        let value = match line.parse::<usize>() {
            Ok(n) if n >= 1 && n <= st.answers.len() => st.answers[n - 1].value.clone(),
            _ => line,
        };
        if st.answer(&value).is_none() {
            println!("{value:?} is not one of the answers; try again.");
            return Ok(Next::Again);
        }
        let note = prompt
            .ask("Note (optional): ")?
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        self.record(step, &value, "agent", json!(null), note)
            .await?;
        Ok(Next::Again)
    }

    /// Runs the step's automated check and, when it is conclusive and the agent agrees,
    /// records its answer.
    async fn run_check(
        &self,
        prompt: &mut Prompt,
        diag: &diagnosis::Diagnoser,
        step: String,
    ) -> anyhow::Result<()> {
        let account = &self.inc.account;
        println!("Running the automated check of {step} for {account} …");
        let (decision, ms) = diag
            .check_step(account, &step, Vec::new())
            .await
            .map_err(|e| coded(exit::INVALID, e.to_string()))?;
        println!("Found ({ms} ms): {}", decision.summary);
        let Some(value) = decision.answer.clone() else {
            println!("Not conclusive: answer from what the user tells you.");
            return Ok(());
        };
        let yes = prompt
            .ask(&format!("Record \"{value}\" from the check? [Y/n] "))?
            .is_none_or(|l| !l.trim().eq_ignore_ascii_case("n"));
        if yes {
            let evidence =
                json!({"summary": decision.summary, "duration_ms": ms, "data": decision.evidence});
            let note = Some(format!("automated check: {}", decision.summary));
            self.record(step, &value, "automated", evidence, note)
                .await?;
        }
        Ok(())
    }

    /// Records an answer at the version shown; a conflict shows the incident again.
    async fn record(
        &self,
        step: String,
        value: &str,
        source: &str,
        evidence: serde_json::Value,
        note: Option<String>,
    ) -> anyhow::Result<()> {
        let inc = self.inc;
        let version = Some(inc.version);
        let actor = &self.ctx.actor;
        let a = answer_of(Some(step), value, source, evidence, note, version);
        match perform(self.store, self.set, inc.id, actor, Action::Answer(a)).await {
            Ok(_) => Ok(()),
            Err(e) if exit::code_for(&e) == exit::CONFLICT => {
                println!("Someone else changed this incident meanwhile; showing it again.");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The runbook reached an outcome: closes the incident with it if the agent says so.
    async fn offer_close(
        &self,
        prompt: &mut Prompt,
        outcome: String,
        runbook: &str,
    ) -> anyhow::Result<Next> {
        let def = self.set.get(runbook).and_then(|r| r.outcome(&outcome));
        println!(
            "\nOutcome: {outcome} — {}",
            def.map(|d| d.meaning.as_str()).unwrap_or("")
        );
        let yes = prompt
            .ask("Close the incident with this outcome? [y/N] ")?
            .is_some_and(|l| l.trim().eq_ignore_ascii_case("y"));
        if !yes {
            return Ok(Next::Stop(exit::OK));
        }
        let close = Action::Close(Close {
            version: Some(self.inc.version),
            outcome: Some(outcome),
            ..Close::default()
        });
        perform(self.store, self.set, self.inc.id, &self.ctx.actor, close).await?;
        println!("Closed.");
        Ok(Next::Stop(exit::OK))
    }

    /// The runbook says to escalate: does it with the reason the agent gives (none: stops).
    async fn offer_escalation(
        &self,
        prompt: &mut Prompt,
        level: Level,
        kind: Option<String>,
    ) -> anyhow::Result<Next> {
        println!(
            "\nThe runbook says: escalate to {level}{}.",
            kind.as_ref().map(|k| format!(" ({k})")).unwrap_or_default()
        );
        let reason = prompt
            .ask("Reason (empty to stop without escalating): ")?
            .unwrap_or_default()
            .trim()
            .to_string();
        if reason.is_empty() {
            return Ok(Next::Stop(exit::OK));
        }
        let escalate = Action::Escalate(Escalate {
            version: Some(self.inc.version),
            to: Some(level.to_string()),
            kind,
            reason,
        });
        perform(self.store, self.set, self.inc.id, &self.ctx.actor, escalate).await?;
        println!("Escalated to {level}. The {level} engineer continues from here.");
        Ok(Next::Stop(exit::OK))
    }
}
