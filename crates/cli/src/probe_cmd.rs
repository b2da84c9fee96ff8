//! `dialtone probe …`: talk to a SIP server as a client would and say what happened.

use crate::exit::{self, coded};
use crate::util::{Ctx, print_json};
use clap::{Args, Subcommand};
use secrecy::SecretString;
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// Take server, transports and probe account from this configuration file.
    #[arg(long, env = "DIALTONE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The server's host or address (skips DNS); defaults to the domain.
    #[arg(long)]
    pub host: Option<String>,
    /// The SIP domain (realm); resolved with NAPTR/SRV/A when no host is given.
    #[arg(long)]
    pub domain: Option<String>,
    #[arg(long)]
    pub port: Option<u16>,
    /// udp, tcp or tls.
    #[arg(long, default_value = "udp")]
    pub transport: String,
    /// CA certificate (PEM) the server's TLS certificate must chain to (repeatable).
    #[arg(long = "ca")]
    pub ca: Vec<PathBuf>,
    /// Go on past an untrusted or expired certificate (it is still reported).
    #[arg(long)]
    pub insecure: bool,
    /// Bound on the whole probe, e.g. 8s.
    #[arg(long, value_parser = |s: &str| diagnosis::config::parse_duration(s))]
    pub timeout: Option<std::time::Duration>,
}

#[derive(Args, Debug, Clone)]
pub struct CredArgs {
    /// The account to use (defaults to the configuration's probe account).
    #[arg(long)]
    pub user: Option<String>,
    /// Read the password from this environment variable (default DIALTONE_PROBE_PASSWORD).
    #[arg(long, default_value = "DIALTONE_PROBE_PASSWORD")]
    pub password_env: String,
    /// Read the password from the first line of standard input instead.
    #[arg(long)]
    pub password_stdin: bool,
}

/// What every probe that places a call takes: the server, the account, how long to send audio.
#[derive(Args, Debug, Clone)]
pub struct CallArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub cred: CredArgs,
    /// How long to send audio, e.g. 2s.
    #[arg(long, value_parser = |s: &str| diagnosis::config::parse_duration(s))]
    pub media: Option<std::time::Duration>,
}

#[derive(Subcommand, Debug)]
pub enum ProbeCmd {
    /// Send OPTIONS: does the server answer?
    Options {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// REGISTER with digest authentication (and un-REGISTER afterwards).
    Register {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        cred: CredArgs,
    },
    /// Call a number: INVITE, wait for the answer, send audio, hang up.
    Call {
        /// The number or user to call.
        to: String,
        #[command(flatten)]
        call: CallArgs,
    },
    /// The server's self-test: one account calls another on the same server, audio both ways.
    Selftest {
        /// The called account (defaults to the configuration's probe.peer_user).
        #[arg(long)]
        peer: Option<String>,
        /// Read the called account's password from this environment variable.
        #[arg(long, default_value = "DIALTONE_PROBE_PEER_PASSWORD")]
        peer_password_env: String,
        #[command(flatten)]
        call: CallArgs,
    },
    /// Call the echo service and measure the audio that comes back.
    Echo {
        /// The echo number (defaults to the configuration's).
        #[arg(long)]
        number: Option<String>,
        #[command(flatten)]
        call: CallArgs,
    },
}

struct Resolved {
    target: sip_probe::ProbeTarget,
    opts: sip_probe::ProbeOptions,
    cfg: Option<diagnosis::Config>,
}

fn resolve(t: &TargetArgs) -> anyhow::Result<Resolved> {
    let cfg = match (&t.config, t.host.is_some() || t.domain.is_some()) {
        (Some(p), _) => Some(crate::config::load_file(p)?),
        (None, false) => match crate::config::locate(None) {
            Some(p) => Some(crate::config::load_file(&p)?),
            None => None,
        },
        (None, true) => None,
    };
    let transport = match t.transport.to_ascii_lowercase().as_str() {
        "udp" => sip_probe::Transport::Udp,
        "tcp" => sip_probe::Transport::Tcp,
        "tls" => sip_probe::Transport::Tls,
        other => {
            return Err(coded(
                exit::INVALID,
                format!("--transport must be udp, tcp or tls, got {other:?}"),
            ));
        }
    };
    let tname = t.transport.to_ascii_lowercase();
    let domain = t
        .domain
        .clone()
        .or_else(|| cfg.as_ref().map(|c| c.server.domain.clone()))
        .or_else(|| t.host.clone())
        .ok_or_else(|| {
            coded(
                exit::CONFIG,
                "name the server: --host or --domain, or --config FILE",
            )
        })?;
    let host = t
        .host
        .clone()
        .or_else(|| cfg.as_ref().and_then(|c| c.server.host.clone()))
        .unwrap_or_else(|| domain.clone());
    let port = t.port.or_else(|| cfg.as_ref().map(|c| c.port(&tname)));
    let mut tls_trust = t.ca.clone();
    if tls_trust.is_empty()
        && let Some(c) = &cfg
    {
        tls_trust = c.server.tls_ca.clone();
    }
    let mut opts = sip_probe::ProbeOptions::default();
    if let Some(c) = &cfg
        && let Some(p) = &c.probe
    {
        if let Some(x) = p.timeout {
            opts.timeout_total = x;
        }
        if let Some(x) = p.media_window {
            opts.media_window = x;
        }
    }
    if let Some(x) = t.timeout {
        opts.timeout_total = x;
    }
    Ok(Resolved {
        target: sip_probe::ProbeTarget {
            host,
            port,
            transport,
            domain,
            tls_trust,
            insecure_continue: t.insecure,
        },
        opts,
        cfg,
    })
}

/// The target and options, with the media window the command asked for, and the caller's
/// credentials.
fn resolve_call(a: &CallArgs) -> anyhow::Result<(Resolved, sip_probe::Credentials)> {
    let mut r = resolve(&a.target)?;
    if let Some(m) = a.media {
        r.opts.media_window = m;
    }
    let creds = credentials(&a.cred, &r.cfg)?;
    Ok((r, creds))
}

fn credentials(
    c: &CredArgs,
    cfg: &Option<diagnosis::Config>,
) -> anyhow::Result<sip_probe::Credentials> {
    use secrecy::ExposeSecret;
    let probe = cfg.as_ref().and_then(|c| c.probe.clone());
    let user = c
        .user
        .clone()
        .or_else(|| probe.as_ref().map(|p| p.user.clone()))
        .ok_or_else(|| {
            coded(
                exit::CONFIG,
                "name the account: --user, or a [probe] section in the configuration",
            )
        })?;
    let password: String = if c.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else if let Ok(p) = std::env::var(&c.password_env) {
        p
    } else if let Some(p) = probe
        .as_ref()
        .filter(|p| c.user.is_none() || c.user.as_deref() == Some(p.user.as_str()))
    {
        p.password.expose_secret().to_string()
    } else {
        return Err(coded(
            exit::CONFIG,
            format!(
                "no password for {user}: set {} or use --password-stdin",
                c.password_env
            ),
        ));
    };
    Ok(sip_probe::Credentials {
        user,
        password: SecretString::from(password),
        auth_user: None,
    })
}

pub async fn run(ctx: &Ctx, cmd: ProbeCmd) -> anyhow::Result<u8> {
    let report = match cmd {
        ProbeCmd::Options { target } => {
            let r = resolve(&target)?;
            sip_probe::options(&r.target, &r.opts).await
        }
        ProbeCmd::Register { target, cred } => {
            let r = resolve(&target)?;
            let creds = credentials(&cred, &r.cfg)?;
            let rep = sip_probe::register(&r.target, &creds, &r.opts).await;
            if rep.verdict.category == sip_probe::Category::Ok {
                // Leave the server as we found it.
                let _ = sip_probe::unregister(&r.target, &creds, &r.opts).await;
            }
            rep
        }
        ProbeCmd::Call { to, call } => {
            let (r, creds) = resolve_call(&call)?;
            sip_probe::call(&r.target, &creds, &to, &r.opts).await
        }
        ProbeCmd::Selftest {
            peer,
            peer_password_env,
            call,
        } => {
            let (r, caller) = resolve_call(&call)?;
            let probe = r.cfg.as_ref().and_then(|c| c.probe.clone());
            let peer_user = peer
                .or_else(|| probe.as_ref().and_then(|p| p.peer_user.clone()))
                .ok_or_else(|| {
                    coded(
                        exit::CONFIG,
                        "name the called account: --peer, or probe.peer_user in the configuration",
                    )
                })?;
            let peer_password = match std::env::var(&peer_password_env) {
                Ok(p) => p,
                Err(_) => {
                    use secrecy::ExposeSecret;
                    probe
                        .as_ref()
                        .filter(|p| p.peer_user.as_deref() == Some(peer_user.as_str()))
                        .and_then(|p| {
                            p.peer_password
                                .as_ref()
                                .map(|x| x.expose_secret().to_string())
                        })
                        .ok_or_else(|| {
                            coded(
                                exit::CONFIG,
                                format!("no password for {peer_user}: set {peer_password_env}"),
                            )
                        })?
                }
            };
            let callee = sip_probe::Credentials {
                user: peer_user,
                password: SecretString::from(peer_password),
                auth_user: None,
            };
            sip_probe::call_between(&r.target, &caller, &callee, &r.opts).await
        }
        ProbeCmd::Echo { number, call } => {
            let (r, creds) = resolve_call(&call)?;
            let number = number
                .or_else(|| r.cfg.as_ref().map(|c| c.server.echo_number.clone()))
                .unwrap_or_else(|| "echo".into());
            sip_probe::echo(&r.target, &creds, &number, &r.opts).await
        }
    };
    if ctx.json {
        print_json(&report)?;
    } else {
        print!("{}", sip_probe::ladder(&report));
        println!(
            "\n{}: {}",
            report.verdict.category.as_str(),
            report.verdict.summary
        );
    }
    Ok(if report.verdict.category == sip_probe::Category::Ok {
        exit::OK
    } else {
        exit::FINDING
    })
}
