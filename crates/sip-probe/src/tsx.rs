//! Sans-IO client transactions, RFC 3261 §17.1: INVITE (§17.1.1, Timers A, B, D) and
//! non-INVITE (§17.1.2, Timers E, F, K). Time is a `Duration` since any origin the caller
//! chooses, so the timer tables can be tested without a clock.

use std::time::Duration;

/// The RFC 3261 §17.1.1.1 timer values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests, 4 s by default.
    pub t2: Duration,
    /// Maximum duration a message remains in the network, 5 s by default.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Which state machine (§17.1.1 or §17.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invite,
    NonInvite,
}

/// Transaction states (Calling is INVITE's, Trying non-INVITE's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// What the transport user must do after feeding an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Send the request again (Timer A or E fired); `n` counts retransmissions from 1.
    Retransmit { n: u32, timer: char },
    /// Timer B or F fired: the transaction timed out without a final response.
    Timeout { timer: char },
    /// Pass this response to the transaction user.
    PassUp,
    /// A retransmitted final response was absorbed; for INVITE, send the ACK again (§17.1.1.2).
    Absorb { resend_ack: bool },
    /// INVITE got a 300-699: send ACK (same branch) and pass the response up.
    AckAndPassUp,
    /// Timer D or K fired: the transaction is over.
    Terminated,
}

/// One client transaction.
#[derive(Debug, Clone)]
pub struct ClientTsx {
    kind: Kind,
    reliable: bool,
    timers: Timers,
    state: State,
    /// When the retransmit timer (A or E) fires next.
    retransmit_at: Option<Duration>,
    retransmit_interval: Duration,
    retransmissions: u32,
    /// Timer B or F.
    timeout_at: Option<Duration>,
    /// Timer D or K.
    linger_until: Option<Duration>,
}

impl ClientTsx {
    /// Starts a transaction whose request has just been sent at `now`.
    pub fn start(kind: Kind, reliable: bool, timers: Timers, now: Duration) -> Self {
        // Timers A/E only run on unreliable transports (§17.1.1.2, §17.1.2.2); B/F always, at 64*T1.
        Self {
            kind,
            reliable,
            timers,
            state: match kind {
                Kind::Invite => State::Calling,
                Kind::NonInvite => State::Trying,
            },
            retransmit_at: (!reliable).then(|| now + timers.t1),
            retransmit_interval: timers.t1,
            retransmissions: 0,
            timeout_at: Some(now + timers.t1 * 64),
            linger_until: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Retransmissions so far.
    pub fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// The next instant at which [`ClientTsx::on_timer`] has something to do.
    pub fn next_deadline(&self) -> Option<Duration> {
        [self.retransmit_at, self.timeout_at, self.linger_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires whichever timer is due at `now` (call it at or after [`ClientTsx::next_deadline`]).
    pub fn on_timer(&mut self, now: Duration) -> Action {
        if let Some(t) = self.linger_until
            && now >= t
        {
            self.state = State::Terminated;
            self.linger_until = None;
            return Action::Terminated;
        }
        if let Some(t) = self.timeout_at
            && now >= t
            && matches!(
                self.state,
                State::Calling | State::Trying | State::Proceeding
            )
        {
            self.state = State::Terminated;
            self.retransmit_at = None;
            self.timeout_at = None;
            return Action::Timeout {
                timer: if self.kind == Kind::Invite { 'B' } else { 'F' },
            };
        }
        if let Some(t) = self.retransmit_at
            && now >= t
        {
            self.retransmissions += 1;
            let timer = if self.kind == Kind::Invite { 'A' } else { 'E' };
            match (self.kind, self.state) {
                // Timer A doubles without a cap (§17.1.1.2).
                (Kind::Invite, State::Calling) => {
                    self.retransmit_interval *= 2;
                    self.retransmit_at = Some(t + self.retransmit_interval);
                }
                // Timer E doubles up to T2 in Trying, and is T2 in Proceeding (§17.1.2.2).
                (Kind::NonInvite, State::Trying) => {
                    self.retransmit_interval = (self.retransmit_interval * 2).min(self.timers.t2);
                    self.retransmit_at = Some(t + self.retransmit_interval);
                }
                (Kind::NonInvite, State::Proceeding) => {
                    self.retransmit_at = Some(t + self.timers.t2);
                }
                _ => {
                    self.retransmit_at = None;
                    self.retransmissions -= 1;
                    return Action::None;
                }
            }
            return Action::Retransmit {
                n: self.retransmissions,
                timer,
            };
        }
        Action::None
    }

    /// Feeds a response matched to this transaction (§17.1.3).
    pub fn on_response(&mut self, status: u16, now: Duration) -> Action {
        let provisional = status < 200;
        match (self.kind, self.state) {
            (_, State::Terminated) => Action::Absorb { resend_ack: false },
            (Kind::Invite, State::Calling | State::Proceeding) => {
                if provisional {
                    // A 1xx stops Timer A; Timer B no longer applies once the server is proceeding.
                    self.state = State::Proceeding;
                    self.retransmit_at = None;
                    self.timeout_at = None;
                    Action::PassUp
                } else if status < 300 {
                    // 2xx: the TU sends the ACK end-to-end (§13.2.2.4); the transaction ends.
                    self.state = State::Terminated;
                    self.retransmit_at = None;
                    self.timeout_at = None;
                    Action::PassUp
                } else {
                    self.state = State::Completed;
                    self.retransmit_at = None;
                    self.timeout_at = None;
                    // Timer D: at least 32 s on unreliable transports, zero on reliable ones.
                    let d = if self.reliable {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(32).max(self.timers.t1 * 64)
                    };
                    self.linger_until = Some(now + d);
                    Action::AckAndPassUp
                }
            }
            (Kind::Invite, State::Completed) => Action::Absorb {
                resend_ack: status >= 300,
            },
            (Kind::NonInvite, State::Trying | State::Proceeding) => {
                if provisional {
                    self.state = State::Proceeding;
                    Action::PassUp
                } else {
                    self.state = State::Completed;
                    self.retransmit_at = None;
                    self.timeout_at = None;
                    // Timer K: T4 on unreliable transports, zero on reliable ones.
                    let k = if self.reliable {
                        Duration::ZERO
                    } else {
                        self.timers.t4
                    };
                    self.linger_until = Some(now + k);
                    Action::PassUp
                }
            }
            (Kind::NonInvite, State::Completed) => Action::Absorb { resend_ack: false },
            (_, State::Calling | State::Trying) => Action::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// Drives a transaction with no response until it ends; returns retransmit instants and the timeout.
    fn run_silent(kind: Kind, reliable: bool, timers: Timers) -> (Vec<Duration>, Duration, char) {
        let mut tsx = ClientTsx::start(kind, reliable, timers, Duration::ZERO);
        let mut sends = Vec::new();
        for _ in 0..1000 {
            let Some(at) = tsx.next_deadline() else { break };
            match tsx.on_timer(at) {
                Action::Retransmit { .. } => sends.push(at),
                Action::Timeout { timer } => return (sends, at, timer),
                other => panic!("unexpected {other:?}"),
            }
        }
        panic!("no timeout")
    }

    #[test]
    fn timer_tables_with_default_t1() {
        // (kind, reliable, retransmit instants in ms, timeout ms, timer)
        let cases: &[(Kind, bool, &[u64], u64, char)] = &[
            // Timer A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; Timer B at 64*T1 = 32 s.
            (
                Kind::Invite,
                false,
                &[500, 1500, 3500, 7500, 15500, 31500],
                32000,
                'B',
            ),
            // Timer E: 500 ms doubling to T2 = 4 s; Timer F at 32 s.
            (
                Kind::NonInvite,
                false,
                &[
                    500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
                ],
                32000,
                'F',
            ),
            (Kind::Invite, true, &[], 32000, 'B'),
            (Kind::NonInvite, true, &[], 32000, 'F'),
        ];
        for (kind, reliable, rtx, timeout, timer) in cases {
            let (sends, at, t) = run_silent(*kind, *reliable, Timers::default());
            let sends: Vec<u64> = sends.iter().map(|d| d.as_millis() as u64).collect();
            assert_eq!(&sends, rtx, "{kind:?} reliable={reliable}");
            assert_eq!(at, MS(*timeout));
            assert_eq!(t, *timer);
        }
    }

    #[test]
    fn invite_non_2xx_is_acked_and_lingers_timer_d() {
        let mut tsx = ClientTsx::start(Kind::Invite, false, Timers::default(), Duration::ZERO);
        assert_eq!(tsx.on_response(100, MS(10)), Action::PassUp);
        assert_eq!(tsx.state(), State::Proceeding);
        assert_eq!(tsx.next_deadline(), None, "Timer A stops on 1xx");
        assert_eq!(tsx.on_response(486, MS(20)), Action::AckAndPassUp);
        assert_eq!(
            tsx.on_response(486, MS(30)),
            Action::Absorb { resend_ack: true }
        );
        assert_eq!(tsx.next_deadline(), Some(MS(32_020)));
        assert_eq!(tsx.on_timer(MS(32_020)), Action::Terminated);
    }

    #[test]
    fn non_invite_proceeding_retransmits_every_t2_and_timer_k() {
        let mut tsx = ClientTsx::start(Kind::NonInvite, false, Timers::default(), Duration::ZERO);
        assert!(matches!(
            tsx.on_timer(MS(500)),
            Action::Retransmit { n: 1, timer: 'E' }
        ));
        assert_eq!(tsx.on_response(100, MS(600)), Action::PassUp);
        // Next E was scheduled at 1500 (interval 1 s) before the 1xx; after it fires, interval is T2.
        assert!(matches!(
            tsx.on_timer(MS(1500)),
            Action::Retransmit { n: 2, .. }
        ));
        assert_eq!(tsx.next_deadline(), Some(MS(5500)));
        assert_eq!(tsx.on_response(200, MS(2000)), Action::PassUp);
        assert_eq!(tsx.next_deadline(), Some(MS(7000)), "Timer K = T4");
        assert_eq!(
            tsx.on_response(200, MS(2100)),
            Action::Absorb { resend_ack: false }
        );
        assert_eq!(tsx.on_timer(MS(7000)), Action::Terminated);
    }

    proptest! {
        #[test]
        fn retransmit_intervals_follow_rfc(t1 in 10u64..2000, t2_mult in 1u64..16, invite in any::<bool>()) {
            let timers = Timers { t1: MS(t1), t2: MS(t1 * t2_mult), t4: MS(5000) };
            let kind = if invite { Kind::Invite } else { Kind::NonInvite };
            let (sends, at, _) = run_silent(kind, false, timers);
            prop_assert_eq!(at, MS(64 * t1));
            let mut prev = Duration::ZERO;
            let mut expected = MS(t1);
            for s in &sends {
                prop_assert_eq!(*s - prev, expected);
                prev = *s;
                expected = if invite { expected * 2 } else { (expected * 2).min(timers.t2) };
                prop_assert!(*s < at);
            }
            // The next retransmission would have come at or after the timeout.
            prop_assert!(prev + expected >= at);
        }
    }
}
