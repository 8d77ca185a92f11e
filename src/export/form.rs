//! The registration form ("meldingsformulier") of one case as one self-contained,
//! printable HTML page: inline CSS, no scripts, no external assets, every value
//! HTML-escaped. Sections follow the procedure: the complaint, the deadlines, the
//! analysis and measures, the outcome, the correspondence and the history.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::case::Satisfied;
use crate::classify::quote;
use crate::store::{CaseDetail, parse_ts};

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn local(stored: Option<&str>, tz: Tz) -> String {
    match stored {
        None => "—".into(),
        Some(s) => parse_ts(s)
            .map(|t| t.with_timezone(&tz).format("%d-%m-%Y %H:%M").to_string())
            .unwrap_or_else(|_| s.to_string()),
    }
}

fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "ja",
        Some(false) => "nee",
        None => "—",
    }
}

fn status_nl(s: &str) -> &str {
    match s {
        "new" => "nieuw",
        "acknowledged" => "ontvangst bevestigd",
        "investigating" => "in behandeling",
        "responded" => "beantwoord",
        "closed" => "afgesloten",
        "not_a_complaint" => "geen klacht",
        other => other,
    }
}

const STYLE: &str = "
body{font-family:'DejaVu Sans',Arial,sans-serif;font-size:11pt;color:#111;margin:2em auto;max-width:48em;line-height:1.4}
h1{font-size:16pt;margin:0 0 .2em}h2{font-size:12.5pt;border-bottom:1px solid #999;margin:1.4em 0 .5em;padding-bottom:.1em}
.meta{color:#444;margin:0 0 1em}
table.f{border-collapse:collapse;width:100%}table.f th{text-align:left;vertical-align:top;width:15em;font-weight:600;padding:.25em .6em .25em 0;color:#333}
table.f td{padding:.25em 0;vertical-align:top;white-space:pre-wrap}
.mail{border:1px solid #bbb;border-radius:3px;padding:.5em .8em;margin:.6em 0;page-break-inside:avoid}
.mail .h{font-size:9.5pt;color:#444;margin-bottom:.4em}.mail .t{white-space:pre-wrap}
.mail ul{margin:.4em 0 0;padding-left:1.2em;font-size:9.5pt}
table.h{border-collapse:collapse;width:100%;font-size:9.5pt}table.h td,table.h th{border-bottom:1px solid #ddd;padding:.2em .4em;text-align:left;vertical-align:top}
.flag{color:#a40000}.foot{margin-top:2em;font-size:8.5pt;color:#666}
@media print{body{margin:0;max-width:none}h2{page-break-after:avoid}}
";

/// Render the form.
pub fn render(d: &CaseDetail, firm_name: &str, tz: Tz, now: DateTime<Utc>) -> String {
    let c = &d.case;
    let e = |s: &str| escape(s);
    let opt = |s: Option<&str>| s.map(escape).unwrap_or_else(|| "—".into());
    let mut h = String::new();
    let row = |h: &mut String, label: &str, value: String| {
        h.push_str(&format!("<tr><th>{}</th><td>{value}</td></tr>\n", e(label)));
    };
    h.push_str("<!DOCTYPE html>\n<html lang=\"nl\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str(&format!(
        "<title>Klachtregistratie {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        e(&c.reference)
    ));
    h.push_str(&format!(
        "<h1>Klachtregistratieformulier {}</h1>\n<p class=\"meta\">{} · status: {} · afgedrukt {}</p>\n",
        e(&c.reference),
        e(firm_name),
        e(status_nl(&c.status)),
        e(&now.with_timezone(&tz).format("%d-%m-%Y %H:%M").to_string())
    ));
    if let Some(p) = &c.purged_at {
        h.push_str(&format!(
            "<p class=\"flag\">Na de bewaartermijn opgeschoond op {}: alleen de niet-persoonlijke gegevens zijn bewaard.</p>\n",
            e(&local(Some(p), tz))
        ));
    }
    if let Some(r) = &c.hold_reason {
        h.push_str(&format!(
            "<p class=\"flag\">Bewaard buiten de termijn (hold): {}</p>\n",
            e(r)
        ));
    }

    h.push_str("<h2>De klacht</h2>\n<table class=\"f\">\n");
    row(&mut h, "Onderwerp", e(&c.subject));
    row(&mut h, "Ontvangen", e(&local(Some(&c.received_at), tz)));
    row(&mut h, "Kanaal", e(&c.channel));
    row(&mut h, "Klager", opt(c.complainant_name.as_deref()));
    row(&mut h, "E-mailadres", opt(c.complainant_address.as_deref()));
    row(&mut h, "Telefoon", opt(c.complainant_phone.as_deref()));
    row(&mut h, "Gemeld door", opt(c.staff_address.as_deref()));
    row(
        &mut h,
        "Verantwoordelijke partner",
        format!("{} &lt;{}&gt;", e(&c.partner_name), e(&c.partner_email)),
    );
    h.push_str("</table>\n");

    h.push_str("<h2>Termijnen</h2>\n<table class=\"f\">\n");
    row(
        &mut h,
        "Ontvangstbevestiging uiterlijk",
        format!(
            "{} (verstuurd: {})",
            e(&local(Some(&c.ack_due_at), tz)),
            e(&local(c.acknowledged_at.as_deref(), tz))
        ),
    );
    row(
        &mut h,
        "Reactie uiterlijk",
        format!(
            "{} (gereageerd: {})",
            e(&local(Some(&c.response_due_at), tz)),
            e(&local(c.response_met_at.as_deref(), tz))
        ),
    );
    row(
        &mut h,
        "Afhandeling uiterlijk",
        e(&local(Some(&c.resolution_due_at), tz)),
    );
    if c.original_resolution_due_at.is_some() {
        row(
            &mut h,
            "Verlengd",
            format!(
                "van {}: {}",
                e(&local(c.original_resolution_due_at.as_deref(), tz)),
                opt(c.extension_reason.as_deref())
            ),
        );
    }
    row(&mut h, "Berekening", e(&c.deadline_explanation));
    row(&mut h, "Afgesloten", e(&local(c.closed_at.as_deref(), tz)));
    h.push_str("</table>\n");

    h.push_str("<h2>Analyse en maatregelen</h2>\n<table class=\"f\">\n");
    row(&mut h, "Oorzaak", opt(c.cause.as_deref()));
    row(&mut h, "Structurele fout", e(yes_no(c.structural_fault)));
    row(
        &mut h,
        "Verbetermaatregel",
        opt(c.improvement_measure.as_deref()),
    );
    row(&mut h, "Behandeling", opt(c.handling.as_deref()));
    row(&mut h, "Resultaat", opt(c.result.as_deref()));
    row(&mut h, "Evaluatie", opt(c.evaluation.as_deref()));
    row(
        &mut h,
        "Klant tevreden",
        e(match Satisfied::from_bool(c.client_satisfied) {
            Satisfied::Yes => "ja",
            Satisfied::No => "nee",
            Satisfied::Unknown => "onbekend",
        }),
    );
    h.push_str("</table>\n");
    if !c.flags.is_empty() {
        h.push_str("<ul class=\"flag\">\n");
        for f in &c.flags {
            h.push_str(&format!("<li>{}</li>\n", e(f)));
        }
        h.push_str("</ul>\n");
    }

    h.push_str("<h2>Correspondentie</h2>\n");
    if d.messages.is_empty() {
        h.push_str("<p>—</p>\n");
    }
    for m in &d.messages {
        let text = if m.direction == "inbound" {
            quote::new_part(&m.text)
        } else {
            m.text.trim().to_string()
        };
        h.push_str("<div class=\"mail\">\n");
        h.push_str(&format!(
            "<div class=\"h\">{} {} · {} · {} {}<br><b>{}</b></div>\n",
            if m.direction == "inbound" {
                "Ontvangen"
            } else {
                "Verstuurd"
            },
            e(&local(Some(&m.received_at), tz)),
            e(&m.kind),
            opt(m.from_name.as_deref()),
            m.from_address
                .as_deref()
                .map(|a| format!("&lt;{}&gt;", e(a)))
                .unwrap_or_default(),
            e(&m.subject)
        ));
        h.push_str(&format!("<div class=\"t\">{}</div>\n", e(&text)));
        if !m.attachment_files.is_empty() {
            h.push_str("<ul>\n");
            for a in &m.attachment_files {
                h.push_str(&format!(
                    "<li>Bijlage: {} ({}, {} bytes)</li>\n",
                    opt(a.filename.as_deref()),
                    e(&a.content_type),
                    a.size
                ));
            }
            h.push_str("</ul>\n");
        }
        h.push_str("</div>\n");
    }

    h.push_str("<h2>Verloop</h2>\n<table class=\"h\">\n<tr><th>Wanneer</th><th>Wie</th><th>Wat</th></tr>\n");
    for ev in &d.events {
        let what = if ev.content_purged {
            format!("{} (inhoud opgeschoond)", e(&ev.event))
        } else {
            let mut w = format!("{}: {}", e(&ev.event), e(&ev.detail));
            if let Some(r) = &ev.reason {
                w.push_str(&format!(" — {}", e(r)));
            }
            w
        };
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{what}</td></tr>\n",
            e(&local(Some(&ev.at), tz)),
            e(&ev.actor)
        ));
    }
    h.push_str("</table>\n");
    h.push_str(
        "<p class=\"foot\">Vertrouwelijk. Gemaakt door klachtpost; de volledige tekst van elk bericht is bewaard in het register.</p>\n</body>\n</html>\n",
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }
}
