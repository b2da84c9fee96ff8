//! Text renderings of an analysis: summary table, ladder diagrams (text and SVG), Markdown.

use std::fmt::Write as _;

use crate::analysis::{CallSummary, Ladder, RegistrationSummary};
use crate::rtp::{MediaSummary, MediaVerdict};
use crate::{Analysis, causes};

/// Times below this are log times of day (seconds since midnight), not Unix time.
const UNIX_THRESHOLD: f64 = 86_400.0 * 2.0;

/// `2026-11-26 04:06:00.123` (UTC) for Unix times, `04:06:00.123` for times of day.
pub fn time_text(t: f64) -> String {
    if !t.is_finite() || t < 0.0 {
        return String::new();
    }
    let whole = t.floor() as i64;
    let millis = ((t - t.floor()) * 1000.0).round().min(999.0) as i64;
    let secs_of_day = whole.rem_euclid(86_400);
    let mut out = String::with_capacity(23);
    if t >= UNIX_THRESHOLD {
        // Runs once per call: chrono's calendar, written without a format string.
        if let Some(day) = chrono::DateTime::from_timestamp(whole, 0).map(|t| t.date_naive()) {
            use chrono::Datelike;
            if day.year() > 9999 {
                out.push('+'); // as chrono's %Y writes years past 9999
            }
            push_digits(&mut out, i64::from(day.year()), 4);
            out.push('-');
            push_digits(&mut out, i64::from(day.month()), 2);
            out.push('-');
            push_digits(&mut out, i64::from(day.day()), 2);
        }
        if !out.is_empty() {
            out.push(' ');
        }
    }
    push_digits(&mut out, secs_of_day / 3600, 2);
    out.push(':');
    push_digits(&mut out, secs_of_day / 60 % 60, 2);
    out.push(':');
    push_digits(&mut out, secs_of_day % 60, 2);
    out.push('.');
    push_digits(&mut out, millis, 3);
    out
}

/// `n` (0 or more) with at least `width` digits, zero-padded.
pub(crate) fn push_digits(out: &mut String, n: i64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let start = i.min(buf.len().saturating_sub(width));
    out.extend(buf[start..].iter().map(|&b| char::from(b)));
}

/// A Markdown table: its head, then one line per row.
fn md_table(out: &mut String, head: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let _ = writeln!(
        out,
        "| {} |\n|{}",
        head.join(" | "),
        "---|".repeat(head.len())
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
}

fn status_text(code: Option<u16>, reason: &str) -> String {
    match code {
        Some(c) => format!("{c} {reason}"),
        None => "no final response".to_owned(),
    }
}

fn first_cause(c: &[crate::Finding]) -> String {
    c.first()
        .map_or_else(|| "ok".to_owned(), |f| f.text.clone())
}

/// A plain-text table of calls and registrations with their causes.
pub fn summary_table(a: &Analysis) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} input: {} bytes, {} packets, {} SIP messages over {:.3} s",
        a.input_kind.name(),
        a.stats.bytes,
        a.stats.packets,
        a.stats.sip_messages,
        a.stats.duration
    );
    let m = &a.stats.media;
    if m.rtp_packets > 0 || m.rtcp_packets > 0 {
        let _ = writeln!(
            out,
            "media: {} RTP packets in {} streams ({} without signalling), {} RTCP packets",
            m.rtp_packets, m.rtp_streams, m.unsignalled_streams, m.rtcp_packets
        );
    }
    let listed = |kept: usize, total: u64| {
        if total > kept as u64 {
            format!("{total} ({kept} listed)")
        } else {
            kept.to_string()
        }
    };
    let _ = writeln!(out, "\nCalls: {}", listed(a.calls.len(), a.stats.calls));
    if !a.calls.is_empty() {
        let _ = writeln!(
            out,
            "{:<23} {:<14} {:<14} {:<28} {:>7} {:>7} {:>4} {:>4}  {:<9} {:<32} cause",
            "start", "from", "to", "final", "pdd ms", "setup", "auth", "rtx", "media", "call-id"
        );
        // One row per call, ten thousand of them: cells padded by hand, without a `format!`
        // each (the same text as `{:<23} {:<14} {:<14} {:<28} {:>7} {:>7} {:>4} {:>4}  {:<9}
        // {:<32} {}`).
        let mut status = String::new();
        for c in &a.calls {
            status.clear();
            match c.final_status {
                Some(code) => {
                    crate::net::push_u32(&mut status, u32::from(code));
                    status.push(' ');
                    status.push_str(&c.final_reason);
                }
                None => status.push_str("no final response"),
            }
            cell_left(&mut out, &c.start_text, 23, usize::MAX);
            cell_left(&mut out, &c.from_user, 14, 14);
            cell_left(&mut out, &c.to_user, 14, 14);
            cell_left(&mut out, &status, 28, 28);
            cell_number(&mut out, c.post_dial_delay_ms, 7);
            cell_number(&mut out, c.setup_time_ms, 7);
            cell_number(&mut out, Some(u64::from(c.auth_rounds)), 4);
            cell_number(&mut out, Some(u64::from(c.retransmissions)), 4);
            out.push(' ');
            cell_left(&mut out, media_word(c.media.as_ref()), 9, usize::MAX);
            cell_left(&mut out, &c.call_id, 32, 32);
            out.push_str(c.causes.first().map_or("ok", |f| f.text.as_str()));
            out.push('\n');
        }
    }
    if !a.unsignalled_streams.is_empty() {
        let _ = writeln!(
            out,
            "\nRTP streams without signalling: {}",
            listed(a.unsignalled_streams.len(), m.unsignalled_streams)
        );
        let _ = writeln!(
            out,
            "{:<23} {:<22} {:<22} {:<10} {:<6} {:>7} {:>6} {:>7} {:>7} {:>8}",
            "start",
            "from",
            "to",
            "ssrc",
            "codec",
            "packets",
            "lost",
            "jitter",
            "max gap",
            "duration"
        );
        for st in &a.unsignalled_streams {
            let _ = writeln!(
                out,
                "{:<23} {:<22} {:<22} {:<10} {:<6} {:>7} {:>6} {:>7} {:>7} {:>8}",
                time_text(st.start_s),
                clip(&st.src, 22),
                clip(&st.dst, 22),
                st.ssrc,
                clip(&st.codec, 6),
                st.packets,
                st.lost,
                st.jitter_ms
                    .map_or_else(|| "-".to_owned(), |j| format!("{j} ms")),
                format!("{} ms", st.max_gap_ms),
                format!("{:.1} s", st.duration_ms as f64 / 1000.0)
            );
        }
    }
    let _ = writeln!(
        out,
        "\nRegistrations: {}",
        listed(a.registrations.len(), a.stats.registrations)
    );
    if !a.registrations.is_empty() {
        let _ = writeln!(
            out,
            "{:<23} {:<14} {:<20} {:<28} {:>4} {:>4} {:>4}  {:<32} cause",
            "start", "user", "registrar", "final", "try", "auth", "rtx", "call-id"
        );
        for r in &a.registrations {
            let _ = writeln!(
                out,
                "{:<23} {:<14} {:<20} {:<28} {:>4} {:>4} {:>4}  {:<32} {}",
                r.start_text,
                clip(&r.user, 14),
                clip(&r.registrar, 20),
                clip(&status_text(r.final_status, &r.final_reason), 28),
                r.attempts,
                r.auth_rounds,
                r.retransmissions,
                clip(&r.call_id, 32),
                first_cause(&r.causes)
            );
        }
    }
    let findings = causes(a);
    if !findings.is_empty() {
        let _ = writeln!(out, "\nFindings:");
        for f in &findings {
            let _ = writeln!(
                out,
                "- [{}] {} (x{})",
                f.outcome.map_or("info", |o| o.id()),
                f.text,
                f.count
            );
        }
    }
    if !a.warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings:");
        for w in &a.warnings {
            let _ = writeln!(out, "- {w}");
        }
    }
    out
}

fn media_word(m: Option<&MediaSummary>) -> &'static str {
    m.map_or("-", |m| m.verdict.word())
}

fn media_of<'a>(a: &'a Analysis, call_id: &str) -> Option<&'a MediaSummary> {
    a.calls
        .iter()
        .find(|c| c.call_id == call_id)
        .and_then(|c| c.media.as_ref())
}

/// Where the media phase goes in a ladder: before the first arrow at or after its end (the
/// BYE), or at the end; `None` when the call was not answered.
fn media_row(ladder: &Ladder, m: &MediaSummary) -> Option<usize> {
    let start = m.phase_start_s?;
    let end = m.phase_end_s.unwrap_or(f64::INFINITY);
    let row = ladder
        .events
        .iter()
        .position(|e| e.t >= end && e.t > start)
        .unwrap_or(ladder.events.len());
    Some(row)
}

fn media_line(m: &MediaSummary) -> String {
    let what = match m.verdict {
        MediaVerdict::BothWays => "audio both ways",
        MediaVerdict::OneWay => "ONE-WAY audio",
        MediaVerdict::NoMedia => "NO audio",
        MediaVerdict::NotJudged | MediaVerdict::NotAnswered => "not judged",
    };
    format!("media: {what}: {}", m.reason)
}

/// `{:<width$}` of `clip(s, max)`, then a space.
fn cell_left(out: &mut String, s: &str, width: usize, max: usize) {
    let n = if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    };
    if n > max {
        out.push_str(&clip(s, max));
        out.push(' ');
        return;
    }
    out.push_str(s);
    for _ in n..=width {
        out.push(' ');
    }
    if n > width {
        // `=width` pushed nothing: the separating space.
        out.push(' ');
    }
}

/// `{:>width$}` of `v` (`-` for `None`), then a space.
fn cell_number(out: &mut String, v: Option<u64>, width: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    match v {
        Some(mut n) => loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        },
        None => {
            i -= 1;
            digits[i] = b'-';
        }
    }
    for _ in (digits.len() - i)..width {
        out.push(' ');
    }
    out.extend(digits[i..].iter().map(|&b| char::from(b)));
    out.push(' ');
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut c: String = s.chars().take(n.saturating_sub(1)).collect();
        c.push('~');
        c
    }
}

/// The ladder of a call or registration, found by Call-ID.
fn find_ladder<'a>(a: &'a Analysis, call_id: &str) -> Option<(String, &'a Ladder)> {
    if let Some(c) = a.calls.iter().find(|c| c.call_id == call_id) {
        return Some((call_title(c), &c.ladder));
    }
    a.registrations
        .iter()
        .find(|r| r.call_id == call_id)
        .map(|r| (registration_title(r), &r.ladder))
}

fn call_title(c: &CallSummary) -> String {
    format!(
        "Call {} -> {} ({}) Call-ID {}",
        c.from_user,
        c.to_user,
        status_text(c.final_status, &c.final_reason),
        c.call_id
    )
}

fn registration_title(r: &RegistrationSummary) -> String {
    format!(
        "Registration of {} at {} ({}) Call-ID {}",
        r.user,
        r.registrar,
        status_text(r.final_status, &r.final_reason),
        r.call_id
    )
}

/// A text ladder diagram of one call or registration, or `None` if the Call-ID is unknown.
pub fn ladder_text(a: &Analysis, call_id: &str) -> Option<String> {
    let (title, ladder) = find_ladder(a, call_id)?;
    let cols = &ladder.endpoints;
    const W: usize = 34;
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let mut header = " ".repeat(10);
    for c in cols {
        let _ = write!(header, "{:<W$}", clip(c, W - 2));
    }
    let _ = writeln!(out, "{}", header.trim_end());
    let media = media_of(a, call_id).and_then(|m| Some((media_row(ladder, m)?, m)));
    for (k, (e, label)) in ladder.iter().enumerate() {
        if let Some((row, m)) = media
            && row == k
        {
            let _ = writeln!(out, "{:10}~~ {} ~~", "", media_line(m));
        }
        let (f, t) = (usize::from(e.from), usize::from(e.to));
        if f >= cols.len() || t >= cols.len() {
            continue;
        }
        let mut line: Vec<char> = format!("{:>8.3}  ", e.t).chars().collect();
        let width = cols.len() * W;
        line.resize(10 + width, ' ');
        for i in 0..cols.len() {
            line[10 + i * W] = '|';
        }
        let (lo, hi) = (f.min(t), f.max(t));
        let mut label = label.to_owned();
        if e.retransmission {
            label.push_str(" [rtx]");
        }
        if lo == hi {
            let start = 10 + lo * W + 2;
            for (k, ch) in label.chars().enumerate() {
                if start + k < line.len() {
                    line[start + k] = ch;
                }
            }
        } else {
            let a0 = 10 + lo * W + 1;
            let a1 = 10 + hi * W - 1;
            for c in &mut line[a0..=a1] {
                *c = '-';
            }
            if f < t {
                line[a1] = '>';
            } else {
                line[a0] = '<';
            }
            let span = a1 - a0 + 1;
            let label: String = clip(&label, span.saturating_sub(4));
            let n = label.chars().count();
            let start = a0 + (span - n) / 2;
            for (k, ch) in label.chars().enumerate() {
                line[start + k] = ch;
            }
        }
        let s: String = line.into_iter().collect();
        let _ = writeln!(out, "{}", s.trim_end());
    }
    if let Some((row, m)) = media
        && row >= ladder.events.len()
    {
        let _ = writeln!(out, "{:10}~~ {} ~~", "", media_line(m));
    }
    Some(out)
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// What to call each column of a ladder: the caller (or registering user) by name and user
/// agent, the other side "SIP server" when there is only one, else the address.
fn endpoint_names(a: &Analysis, call_id: &str, cols: &[String]) -> Vec<String> {
    let (client, who, ua) = match a.calls.iter().find(|c| c.call_id == call_id) {
        Some(c) => (&c.client, &c.from_user, &c.user_agent),
        None => match a.registrations.iter().find(|r| r.call_id == call_id) {
            Some(r) => (&r.client, &r.user, &r.user_agent),
            None => return cols.to_vec(),
        },
    };
    let others = cols.iter().filter(|c| *c != client).count();
    cols.iter()
        .map(|c| {
            if c == client && !who.is_empty() {
                if ua.is_empty() {
                    who.clone()
                } else {
                    format!("{who} ({ua})")
                }
            } else if c != client && others == 1 {
                "SIP server".to_owned()
            } else {
                c.clone()
            }
        })
        .collect()
}

/// An SVG ladder diagram of one call or registration, or `None` if the Call-ID is unknown.
/// Columns are named by user and user agent where known (the address below); 401/407
/// challenges are drawn neutral, not as failures.
pub fn ladder_svg(a: &Analysis, call_id: &str) -> Option<String> {
    let (title, ladder) = find_ladder(a, call_id)?;
    let cols = &ladder.endpoints;
    let names = endpoint_names(a, call_id, cols);
    let col_w = 240;
    let left = 90;
    let top = 70;
    let row_h = 30;
    let width = left + cols.len().max(1) * col_w;
    // The media phase gets a band of its own between the answer and the BYE.
    let media = media_of(a, call_id).and_then(|m| Some((media_row(ladder, m)?, m)));
    let band_h = if media.is_some() { 40 } else { 0 };
    let row_y = |k: usize| {
        top + k * row_h
            + 10
            + if media.is_some_and(|(r, _)| k >= r) {
                band_h
            } else {
                0
            }
    };
    let height = top + ladder.events.len() * row_h + band_h + 30;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-weight="bold">{}</text>"#,
        xml_escape(&title)
    );
    for (i, c) in cols.iter().enumerate() {
        let x = left + i * col_w + col_w / 2;
        let name = names.get(i).unwrap_or(c);
        let address = if name == c {
            String::new()
        } else {
            format!(
                r##"<text x="{x}" y="52" text-anchor="middle" font-size="10" fill="#555">{}</text>"##,
                xml_escape(&clip(c, 38))
            )
        };
        let _ = writeln!(
            s,
            r#"<text x="{x}" y="38" text-anchor="middle" font-weight="bold">{}</text>{address}<line x1="{x}" y1="56" x2="{x}" y2="{}" stroke="grey"/>"#,
            xml_escape(&clip(name, 32)),
            height - 10
        );
    }
    if let Some((row, m)) = media {
        let (fill, word) = match m.verdict {
            MediaVerdict::BothWays => ("#27ae60", "audio both ways"),
            MediaVerdict::OneWay => ("#e67e22", "one-way audio"),
            MediaVerdict::NoMedia => ("#c0392b", "no audio"),
            MediaVerdict::NotJudged | MediaVerdict::NotAnswered => ("#95a5a6", "media not judged"),
        };
        let y = top + row * row_h + 10 - row_h / 2 + 6;
        let text = clip(&m.reason, 40 + cols.len() * 26);
        let _ = writeln!(
            s,
            r#"<g class="media {verdict:?}"><rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}" fill-opacity="0.18" stroke="{fill}"/><text x="{cx}" y="{ty}" text-anchor="middle" fill="{fill}" font-weight="bold">media: {word}</text><text x="{cx}" y="{ty2}" text-anchor="middle" fill="{fill}">{reason}</text></g>"#,
            verdict = m.verdict,
            x = left + 4,
            w = cols.len().max(1) * col_w - 8,
            h = band_h - 4,
            cx = left + cols.len().max(1) * col_w / 2,
            ty = y + 15,
            ty2 = y + 30,
            reason = xml_escape(&text),
        );
    }
    for (k, (e, label)) in ladder.iter().enumerate() {
        let (f, t) = (usize::from(e.from), usize::from(e.to));
        if f >= cols.len() || t >= cols.len() {
            continue;
        }
        let y = row_y(k);
        let x1 = left + f * col_w + col_w / 2;
        let x2 = left + t * col_w + col_w / 2;
        let colour = if label.starts_with("401") || label.starts_with("407") {
            // A challenge is the normal first answer to an authenticated request.
            "#6b7280"
        } else if label.starts_with(['4', '5', '6']) {
            "#c0392b"
        } else if label.starts_with('2') {
            "#27ae60"
        } else {
            "#2c3e50"
        };
        let dash = if e.retransmission {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = writeln!(s, r#"<text x="8" y="{y}">{:.3}</text>"#, e.t);
        if f == t {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{y}" fill="{colour}">{}</text>"#,
                x1 + 6,
                xml_escape(label)
            );
            continue;
        }
        let dir: i64 = if x2 > x1 { -1 } else { 1 };
        let head = x2 as i64 + dir * 8;
        let _ = writeln!(
            s,
            r#"<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{colour}"{dash}/><polygon points="{x2},{y} {head},{} {head},{}" fill="{colour}"/><text x="{}" y="{}" text-anchor="middle" fill="{colour}">{}{}</text>"#,
            y - 4,
            y + 4,
            (x1 + x2) / 2,
            y - 5,
            xml_escape(label),
            if e.retransmission { " (rtx)" } else { "" }
        );
    }
    s.push_str("</svg>\n");
    Some(s)
}

/// A Markdown section for the incident dossier.
pub fn markdown_section(a: &Analysis) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Client log / capture analysis\n");
    let _ = writeln!(
        out,
        "Input: {} ({} bytes, {} SIP messages over {:.3} s).\n",
        a.input_kind.name(),
        a.stats.bytes,
        a.stats.sip_messages,
        a.stats.duration
    );
    let findings = causes(a);
    if findings.is_empty() {
        let _ = writeln!(out, "No failure cause found.\n");
    } else {
        let _ = writeln!(out, "**Findings**\n");
        for f in &findings {
            let _ = writeln!(
                out,
                "- {}{} ({} time(s){})",
                f.outcome
                    .map_or(String::new(), |o| format!("`{}`: ", o.id())),
                md(&f.text),
                f.count,
                f.call_id
                    .as_ref()
                    .map_or(String::new(), |c| format!(", e.g. Call-ID `{}`", md(c)))
            );
        }
        out.push('\n');
    }
    if !a.registrations.is_empty() {
        let head = [
            "registration start",
            "user",
            "registrar",
            "final",
            "attempts",
            "auth rounds",
            "cause",
        ];
        let rows = a.registrations.iter().take(50).map(|r| {
            vec![
                r.start_text.clone(),
                md(&r.user),
                md(&r.registrar),
                md(&status_text(r.final_status, &r.final_reason)),
                r.attempts.to_string(),
                r.auth_rounds.to_string(),
                md(&first_cause(&r.causes)),
            ]
        });
        md_table(&mut out, &head, rows);
        out.push('\n');
    }
    if !a.calls.is_empty() {
        let head = [
            "call start",
            "from",
            "to",
            "final",
            "post-dial delay",
            "retransmissions",
            "media",
            "cause",
        ];
        let rows = a.calls.iter().take(50).map(|c| {
            vec![
                c.start_text.clone(),
                md(&c.from_user),
                md(&c.to_user),
                md(&status_text(c.final_status, &c.final_reason)),
                c.post_dial_delay_ms
                    .map_or_else(|| "-".to_owned(), |v| format!("{v} ms")),
                c.retransmissions.to_string(),
                media_word(c.media.as_ref()).to_string(),
                md(&first_cause(&c.causes)),
            ]
        });
        md_table(&mut out, &head, rows);
        if a.calls.len() > 50 {
            let _ = writeln!(out, "\n({} more calls not listed)", a.calls.len() - 50);
        }
        out.push('\n');
    }
    if !a.warnings.is_empty() {
        let _ = writeln!(out, "Warnings:\n");
        for w in &a.warnings {
            let _ = writeln!(out, "- {}", md(w));
        }
    }
    out
}

/// Neutralise Markdown table and inline syntax in untrusted text.
fn md(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('`', "'")
        .replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod time_tests {
    use super::time_text;

    #[test]
    fn time_text_matches_chrono() {
        for t in [
            172_800.0,
            172_800.5,
            951_782_400.25,
            1_709_164_799.999_6,
            1_764_720_000.123,
            4_102_444_800.0,
            253_402_300_799.0,
            253_402_300_800.0,
            1e15,
        ] {
            let whole = f64::floor(t) as i64;
            let millis = ((t - f64::floor(t)) * 1000.0).round().min(999.0) as i64;
            let s = whole.rem_euclid(86_400);
            let hms = format!(
                "{:02}:{:02}:{:02}.{millis:03}",
                s / 3600,
                s / 60 % 60,
                s % 60
            );
            let want = match chrono::DateTime::from_timestamp(whole, 0) {
                Some(day) => format!("{} {hms}", day.format("%Y-%m-%d")),
                None => hms,
            };
            assert_eq!(time_text(t), want, "{t}");
        }
        assert_eq!(time_text(3_723.5), "01:02:03.500");
        assert_eq!(time_text(-1.0), "");
    }
}
