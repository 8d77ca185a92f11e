//! The templates of every mail klachtpost sends, rendered with minijinja.
//!
//! Each kind of mail ([`KINDS`]) has a plain-text template per language,
//! `NAME.nl.txt` / `NAME.en.txt`, whose first line is `Subject: …`, then a blank line, then
//! the body. Mails a person reads at length (acknowledgement, extension, the partners'
//! notices, reminders and digest) also have `NAME.nl.html` / `NAME.en.html`; every other
//! mail gets its HTML alternative from `layout.html`, which sets the plain text as
//! paragraphs. The defaults are built into the
//! binary (from `config/templates/`); a file of the same name in `[templates] dir`
//! overrides the built-in one, so a firm edits its mail without a rebuild.
//!
//! Values are inserted, never read as template text: a name such as `{{ partner }}`
//! comes out literally. `.html` templates escape every value (minijinja's auto-escape by
//! file name). An unknown variable is an error (strict undefined), and
//! [`TemplateSet::check`] renders every template in both languages with sample data, so
//! a broken template is reported by `check-config` and at start-up, with its file and
//! line, never first when a complaint arrives.
//!
//! `NAME.LANG.html` may `{% extends "layout.html" %}` and fill its `body` block (the
//! partners' mails do). `commands.nl.txt` / `commands.en.txt` hold the list of reply
//! commands that the partners' mails `{% include %}`.
//!
//! Adding a mail: two text files under `config/templates/` and one line in [`KINDS`]
//! (`text_mail!("held_notice", ["reference", "partner", "why", …])`), sample values in
//! [`sample`], then render it with [`super::notice_from_template`] (or
//! [`TemplateSet::render`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use minijinja::value::Value;
use minijinja::{Environment, UndefinedBehavior, context};

use super::language::Lang;

/// One kind of mail, with its built-in templates and the variables it is given (besides
/// `firm` and `lang`, which every template gets).
#[derive(Debug)]
pub struct MailKind {
    pub name: &'static str,
    text: [&'static str; 2],
    html: Option<[&'static str; 2]>,
    pub vars: &'static [&'static str],
}

macro_rules! text_mail {
    ($name:literal, [$($var:literal),* $(,)?]) => {
        MailKind {
            name: $name,
            text: [
                include_str!(concat!("../../config/templates/", $name, ".nl.txt")),
                include_str!(concat!("../../config/templates/", $name, ".en.txt")),
            ],
            html: None,
            vars: &[$($var),*],
        }
    };
}

macro_rules! html_mail {
    ($name:literal, [$($var:literal),* $(,)?]) => {
        MailKind {
            html: Some([
                include_str!(concat!("../../config/templates/", $name, ".nl.html")),
                include_str!(concat!("../../config/templates/", $name, ".en.html")),
            ]),
            ..text_mail!($name, [$($var),*])
        }
    };
}

/// Every mail klachtpost sends.
pub const KINDS: &[MailKind] = &[
    html_mail!(
        "acknowledgement",
        [
            "reference",
            "name",
            "subject",
            "received",
            "respond_by",
            "resolve_by",
            "partner"
        ]
    ),
    html_mail!(
        "extension",
        [
            "reference",
            "name",
            "subject",
            "received",
            "respond_by",
            "resolve_by",
            "partner",
            "previous",
            "reason"
        ]
    ),
    text_mail!("staff_confirmation", ["reference", "partner", "summary"]),
    text_mail!(
        "triage_notice",
        ["reference", "case_known", "reason", "message_row"]
    ),
    text_mail!("closed_case_notice", ["reference", "message_row"]),
    text_mail!(
        "held_notice",
        ["reference", "partner", "why", "flood", "limit", "window"]
    ),
    text_mail!(
        "outage_alert",
        ["partner", "since", "transport", "error", "queued"]
    ),
    text_mail!(
        "quarantine_notice",
        ["reference", "problem", "received", "size", "folder"]
    ),
    text_mail!(
        "unanswerable_notice",
        ["reference", "partner", "acknowledge_by"]
    ),
    text_mail!(
        "channel_notice",
        ["channel", "since", "error", "recovered", "back_at"]
    ),
    html_mail!(
        "new_complaint",
        [
            "reference",
            "partner",
            "complainant",
            "channel",
            "subject",
            "received",
            "acknowledge_by",
            "respond_by",
            "resolve_by",
            "excerpt",
            "assigned_because",
            "assigned",
            "acknowledged"
        ]
    ),
    html_mail!("new_complaints", ["partner", "count", "cases"]),
    html_mail!("reminders", ["partner", "day", "reminders", "escalations"]),
    html_mail!(
        "ack_warning",
        [
            "reference",
            "partner",
            "complainant",
            "phone",
            "cause",
            "error",
            "acknowledge_by"
        ]
    ),
    text_mail!(
        "command_reply",
        ["subject", "refused", "done", "failed", "not_understood"]
    ),
    html_mail!(
        "digest",
        ["date", "at", "since", "open", "closed", "problems"]
    ),
];

/// Pieces several mails include (`{% include "commands.nl.txt" %}`), overridable like the
/// mails: the list of reply commands partners can use.
const PARTIALS: &[(&str, [&str; 2])] = &[(
    "commands",
    [
        include_str!("../../config/templates/commands.nl.txt"),
        include_str!("../../config/templates/commands.en.txt"),
    ],
)];

/// Mails klachtpost no longer sends. A firm's file for one is left alone rather than
/// refused, so an upgrade does not stop the daemon: `send_failed` (a refused
/// acknowledgement is now told by `ack_warning`).
const RETIRED: &[&str] = &["send_failed"];

const LAYOUT: &str = "layout.html";
const LAYOUT_BUILTIN: &str = include_str!("../../config/templates/layout.html");

/// A kind by name.
pub fn kind(name: &str) -> Option<&'static MailKind> {
    KINDS.iter().find(|k| k.name == name)
}

fn lang_index(lang: Lang) -> usize {
    match lang {
        Lang::Nl => 0,
        Lang::En => 1,
    }
}

/// One rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    /// The HTML alternative, when there is one.
    pub html: Option<String>,
}

/// Why a template could not be used; `problem` names the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct TemplateError {
    pub problem: String,
}

/// Every template, compiled: built-in defaults with the firm's files over them.
#[derive(Debug, Clone)]
pub struct TemplateSet {
    env: Environment<'static>,
    /// Template name → where its text came from (a path, or "built-in NAME").
    origins: HashMap<String, String>,
    /// Kinds whose text comes from an old per-mail key (`[templates] acknowledgement`):
    /// sent as plain text only, since the built-in HTML would not match the firm's text.
    text_only: Vec<&'static str>,
}

impl TemplateSet {
    /// Only the built-in templates.
    pub fn builtin() -> Result<TemplateSet, Vec<String>> {
        Self::load(None, &[])
    }

    /// The built-ins, overridden by files of the same name in `dir`, and by `legacy`
    /// (kind, file) pairs from the old `[templates] acknowledgement = PATH` keys. Every
    /// problem is reported at once, each naming its file and line.
    pub fn load(
        dir: Option<&Path>,
        legacy: &[(&str, PathBuf)],
    ) -> Result<TemplateSet, Vec<String>> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // `{% filter escape_text %}{% include "commands.nl.txt" %}{% endfilter %}`: a
        // plain-text piece set into HTML. (`escape` would leave it as it is: in an HTML
        // template, rendered output counts as already escaped.)
        env.add_filter("escape_text", |s: String| {
            Value::from_safe_string(minijinja::HtmlEscape(&s).to_string())
        });
        let mut set = TemplateSet {
            env,
            origins: HashMap::new(),
            text_only: Vec::new(),
        };
        let mut problems = Vec::new();
        let mut known_files = vec![LAYOUT.to_string()];

        if let Some(dir) = dir
            && !dir.is_dir()
        {
            problems.push(format!("templates.dir: {} is not a folder", dir.display()));
        }
        let dir = dir.filter(|d| d.is_dir());
        let from_dir =
            |name: &str| -> Option<PathBuf> { dir.map(|d| d.join(name)).filter(|p| p.is_file()) };

        for kind in KINDS {
            let legacy_file = legacy.iter().find(|(k, _)| *k == kind.name).map(|(_, p)| p);
            if legacy_file.is_some() {
                set.text_only.push(kind.name);
            }
            for lang in Lang::ALL {
                let name = format!("{}.{}.txt", kind.name, lang.code());
                known_files.push(name.clone());
                let builtin = kind.text[lang_index(lang)];
                match legacy_file {
                    Some(file) => set.add_legacy(&name, file, builtin, kind.vars, &mut problems),
                    None => {
                        let file = from_dir(&name);
                        set.add(&name, file.as_deref(), builtin, kind.vars, &mut problems)
                    }
                }
                let html_name = format!("{}.{}.html", kind.name, lang.code());
                known_files.push(html_name.clone());
                if legacy_file.is_none() {
                    let file = from_dir(&html_name);
                    match (file, kind.html) {
                        (Some(file), _) => {
                            set.add(&html_name, Some(&file), "", kind.vars, &mut problems)
                        }
                        (None, Some(html)) => set.add(
                            &html_name,
                            None,
                            html[lang_index(lang)],
                            kind.vars,
                            &mut problems,
                        ),
                        (None, None) => {}
                    }
                }
            }
        }
        for (name, builtin) in PARTIALS {
            for lang in Lang::ALL {
                let file_name = format!("{name}.{}.txt", lang.code());
                known_files.push(file_name.clone());
                let file = from_dir(&file_name);
                set.add(
                    &file_name,
                    file.as_deref(),
                    builtin[lang_index(lang)],
                    &[],
                    &mut problems,
                );
            }
        }
        let layout = from_dir(LAYOUT);
        set.add(
            LAYOUT,
            layout.as_deref(),
            LAYOUT_BUILTIN,
            &[],
            &mut problems,
        );

        // A misspelt file name would silently leave the built-in in use.
        if let Some(dir) = dir
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                let retired = RETIRED
                    .iter()
                    .any(|r| name.strip_prefix(r).is_some_and(|n| n.starts_with('.')));
                if (name.ends_with(".txt") || name.ends_with(".html"))
                    && !known_files.contains(&name)
                    && !retired
                {
                    problems.push(format!(
                        "{}: not a template klachtpost knows (known: NAME.nl.txt, NAME.en.txt, NAME.nl.html, NAME.en.html for NAME in {}; layout.html; commands.nl.txt, commands.en.txt)",
                        dir.join(&name).display(),
                        KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(set)
        } else {
            Err(problems)
        }
    }

    /// A file named by an old per-mail key. Those files could leave out the `Subject:`
    /// line (then the built-in subject is used, and error lines count from it) and were
    /// written with `{placeholder}`s, which are taken over as `{{ placeholder }}` when the
    /// file has no `{{` or `{%` of the new form.
    fn add_legacy(
        &mut self,
        name: &str,
        file: &Path,
        builtin: &'static str,
        vars: &[&str],
        problems: &mut Vec<String>,
    ) {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text.replace("\r\n", "\n"),
            Err(e) => {
                problems.push(format!("cannot read the template {}: {e}", file.display()));
                return;
            }
        };
        let text = if text.contains("{{") || text.contains("{%") {
            text
        } else {
            convert_old_placeholders(&text, vars)
        };
        let source = if text.starts_with("Subject:") {
            text
        } else {
            let subject = builtin.lines().next().unwrap_or("Subject: {{ reference }}");
            format!("{subject}\n\n{text}")
        };
        self.add_source(name, file.display().to_string(), source, vars, problems);
    }

    fn add(
        &mut self,
        name: &str,
        file: Option<&Path>,
        builtin: &'static str,
        vars: &[&str],
        problems: &mut Vec<String>,
    ) {
        let (origin, source) = match file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => (path.display().to_string(), text.replace("\r\n", "\n")),
                Err(e) => {
                    problems.push(format!("cannot read the template {}: {e}", path.display()));
                    return;
                }
            },
            None => (format!("built-in {name}"), builtin.to_string()),
        };
        self.add_source(name, origin, source, vars, problems);
    }

    fn add_source(
        &mut self,
        name: &str,
        origin: String,
        source: String,
        vars: &[&str],
        problems: &mut Vec<String>,
    ) {
        for (line, old) in old_placeholders(&source, vars) {
            problems.push(format!(
                "{origin}:{line}: {{{old}}} is the old placeholder form; write {{{{ {old} }}}}"
            ));
        }
        if let Err(e) = self.env.add_template_owned(name.to_string(), source) {
            problems.push(describe(&origin, &e));
        }
        self.origins.insert(name.to_string(), origin);
    }

    /// Where a template's text came from: a path, or "built-in NAME".
    pub fn origin(&self, name: &str) -> Option<&str> {
        self.origins.get(name).map(String::as_str)
    }

    /// Render one mail. `vars` must hold every variable of the kind ([`MailKind::vars`])
    /// and `firm`.
    pub fn render(&self, kind: &str, lang: Lang, vars: Value) -> Result<Rendered, TemplateError> {
        let k = self::kind(kind).ok_or_else(|| TemplateError {
            problem: format!("no mail kind {kind:?}"),
        })?;
        for var in k.vars.iter().chain(&["firm"]) {
            if vars.get_attr(var).map(|v| v.is_undefined()).unwrap_or(true) {
                return Err(TemplateError {
                    problem: format!("{kind}: the variable {var} was not given (a bug)"),
                });
            }
        }
        let ctx = context! { lang => lang.code(), ..vars };
        let name = format!("{kind}.{}.txt", lang.code());
        let origin = self.origin(&name).unwrap_or(&name).to_string();
        let full = self
            .env
            .get_template(&name)
            .and_then(|t| t.render(&ctx))
            .map_err(|e| self.error(&origin, &e))?;
        let (subject, text) = split_subject(&full).map_err(|p| TemplateError {
            problem: format!("{origin}: {p}"),
        })?;
        let html_name = format!("{kind}.{}.html", lang.code());
        // Every HTML part may extend `layout.html`, which shows the mail's subject as `title`
        // and, unless a mail fills its `body` block, the plain text as paragraphs. (Without
        // an HTML template of its own, `subject` is the mail's subject too, as it always was.)
        let html_ctx =
            context! { title => subject.clone(), paragraphs => paragraphs(&text), ..ctx };
        let html = if self.text_only.contains(&k.name) {
            None
        } else if self.origins.contains_key(&html_name) {
            Some(self.render_html(&html_name, &html_ctx)?)
        } else {
            let ctx = context! { subject => subject.clone(), ..html_ctx };
            Some(self.render_html(LAYOUT, &ctx)?)
        };
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }

    fn render_html(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        let origin = self.origin(name).unwrap_or(name).to_string();
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| self.error(&origin, &e))
    }

    fn error(&self, origin: &str, e: &minijinja::Error) -> TemplateError {
        let origin_of = |e: &minijinja::Error| {
            e.name()
                .and_then(|n| self.origins.get(n))
                .map(String::as_str)
                .unwrap_or(origin)
                .to_string()
        };
        // An error in an included or extended template (`commands.nl.txt`, `layout.html`)
        // comes wrapped in one at the `include`: name the file where it really is.
        let mut inner = e;
        while let Some(next) =
            std::error::Error::source(inner).and_then(|s| s.downcast_ref::<minijinja::Error>())
        {
            inner = next;
        }
        let problem = if std::ptr::eq(inner, e) {
            describe(&origin_of(e), e)
        } else {
            let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
            format!(
                "{} (included from {}{line})",
                describe(&origin_of(inner), inner),
                origin_of(e)
            )
        };
        TemplateError { problem }
    }

    /// Render every template of every kind in both languages with sample data; one line
    /// per problem, naming the file and line.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for kind in KINDS {
            for lang in Lang::ALL {
                match self.render(kind.name, lang, sample(kind, lang)) {
                    Ok(r) if r.subject.trim().is_empty() => problems.push(format!(
                        "{}: the subject is empty",
                        self.origin(&format!("{}.{}.txt", kind.name, lang.code()))
                            .unwrap_or(kind.name)
                    )),
                    Ok(_) => {}
                    Err(e) => problems.push(e.problem),
                }
            }
        }
        problems
    }
}

fn describe(origin: &str, e: &minijinja::Error) -> String {
    let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
    match e.detail() {
        Some(detail) => format!("{origin}{line}: {}: {detail}", e.kind()),
        None => format!("{origin}{line}: {}", e.kind()),
    }
}

/// `Subject: …` on the first line, a blank line, the body.
fn split_subject(full: &str) -> Result<(String, String), String> {
    let (first, rest) = full.split_once('\n').unwrap_or((full, ""));
    let subject = first
        .strip_prefix("Subject:")
        .ok_or("the first line must be `Subject: …`, then a blank line, then the text")?;
    let body = match rest.strip_prefix('\n') {
        Some(body) => body,
        None if rest.trim().is_empty() => "",
        None => return Err("a blank line must follow the Subject: line".into()),
    };
    if body.trim().is_empty() {
        return Err("the text is empty".into());
    }
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok((subject, body.to_string()))
}

/// The text as paragraphs of lines, for the HTML layout.
fn paragraphs(text: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut current = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line.trim_end().to_string());
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `{name}` of a variable the mail gets, written the old way (single braces), with its
/// line: it would now come out literally.
fn old_placeholders(source: &str, vars: &[&str]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let bytes = line.as_bytes();
        for (i, _) in line.match_indices('{') {
            if i > 0 && bytes[i - 1] == b'{' || bytes.get(i + 1) == Some(&b'{') {
                continue;
            }
            let rest = &line[i + 1..];
            if let Some(end) = rest.find('}') {
                let name = &rest[..end];
                let closes_double = rest.as_bytes().get(end + 1) == Some(&b'}');
                if !closes_double
                    && (vars.contains(&name) || ["firm", "greeting_name"].contains(&name))
                {
                    found.push((n + 1, name.to_string()));
                }
            }
        }
    }
    found
}

/// An old-form template's `{placeholder}`s as minijinja expressions, with the old
/// fallbacks (`greeting_name`, an empty subject).
fn convert_old_placeholders(text: &str, vars: &[&str]) -> String {
    let mut out = text.to_string();
    for (old, new) in [
        (
            "{greeting_name}",
            "{{ name or \"heer, mevrouw\" }}".to_string(),
        ),
        (
            "{subject}",
            "{{ subject or \"(geen onderwerp)\" }}".to_string(),
        ),
        ("{firm}", "{{ firm }}".to_string()),
    ] {
        out = out.replace(old, &new);
    }
    for var in vars {
        out = out.replace(&format!("{{{var}}}"), &format!("{{{{ {var} }}}}"));
    }
    out
}

/// Sample values for `check-config` and the golden files.
pub fn sample(kind: &MailKind, lang: Lang) -> Value {
    let en = lang == Lang::En;
    let pick = |nl: &str, e: &str| if en { e.to_string() } else { nl.to_string() };
    let mut map: std::collections::BTreeMap<&str, Value> = std::collections::BTreeMap::new();
    map.insert("firm", Value::from("Adviesbureau Voorbeeld"));
    for var in kind.vars {
        if let Some(v) = partners_sample(kind.name, var, en) {
            map.insert(var, Value::from_serialize(&v));
            continue;
        }
        let v = match *var {
            "reference" if kind.name == "quarantine_notice" => Value::from("Q-0007"),
            "reference" => Value::from("KL-2026-0042"),
            "name" => Value::from("Jan de Vries"),
            "subject" => Value::from(pick("Factuur klopt niet", "Invoice is wrong")),
            "received" => Value::from(pick(
                "donderdag 19 november 2026 om 10:15",
                "Thursday 19 November 2026 at 10:15",
            )),
            "respond_by" => Value::from(pick(
                "donderdag 3 december 2026",
                "Thursday 3 December 2026",
            )),
            "resolve_by" => Value::from(pick("vrijdag 8 januari 2027", "Friday 8 January 2027")),
            "previous" => Value::from(pick(
                "donderdag 17 december 2026",
                "Thursday 17 December 2026",
            )),
            "partner" => Value::from("Anna de Boer"),
            "reason" => Value::from(pick(
                "wij wachten op stukken van de belastingdienst",
                "we are waiting for documents from the tax office",
            )),
            "summary" => Value::from(pick(
                "De klacht van Jan de Vries <jan@example.nl> is geregistreerd.",
                "The complaint of Jan de Vries <jan@example.nl> is registered.",
            )),
            "case_known" => Value::from(true),
            "message_row" => Value::from(17),
            "why" => Value::from("550 5.1.1 <redacted>: Recipient address rejected"),
            "flood" => Value::from(true),
            "limit" => Value::from(5),
            "window" => Value::from(pick("een uur", "an hour")),
            "since" => Value::from(pick(
                "donderdag 19 november 2026 om 10:15",
                "Thursday 19 November 2026 at 10:15",
            )),
            "transport" => Value::from("smtp.voorbeeld.nl:587"),
            "error" => Value::from("535 5.7.8 Error: authentication failed"),
            "queued" => Value::from(12),
            "problem" => Value::from(pick(
                "de mailserver weigert dit bericht te leveren",
                "the mail server refuses to deliver this message",
            )),
            "size" => Value::from(48213),
            "folder" => Value::from("Quarantine"),
            "acknowledge_by" => {
                Value::from(pick("maandag 23 november 2026", "Monday 23 November 2026"))
            }
            "channel" => Value::from("mailbox"),
            "recovered" => Value::from(false),
            "back_at" => Value::from(pick(
                "donderdag 19 november 2026 om 11:40",
                "Thursday 19 November 2026 at 11:40",
            )),
            other => Value::from(format!("<{other}>")),
        };
        map.insert(var, v);
    }
    Value::from_serialize(&map)
}

/// Sample values of the partners' mails (lists and records), where they differ from the
/// other mails' variables of the same name.
fn partners_sample(kind: &str, var: &str, en: bool) -> Option<serde_json::Value> {
    use serde_json::json;
    let pick = |nl: &str, e: &str| if en { e.to_string() } else { nl.to_string() };
    let at = |d: &str, t: &str| {
        let (nl, e) = match d {
            "mon" => ("maandag 7 december 2026", "Monday 7 December 2026"),
            "fri" => ("vrijdag 4 december 2026", "Friday 4 December 2026"),
            "thu" => ("donderdag 3 december 2026", "Thursday 3 December 2026"),
            _ => ("vrijdag 8 januari 2027", "Friday 8 January 2027"),
        };
        if en {
            format!("{e} at {t}")
        } else {
            format!("{nl} om {t}")
        }
    };
    let reminder = |reference: &str, deadline: &str, offset: i64| {
        json!({
            "reference": reference,
            "complainant": "Jan de Vries <jan@example.nl>",
            "partner": "Anna de Boer",
            "deadline": deadline,
            "due": at("thu", "17:00"),
            "offset": offset,
        })
    };
    Some(match (kind, var) {
        ("new_complaint", "complainant") | ("ack_warning", "complainant") => {
            json!("Jan de Vries <jan@example.nl>")
        }
        ("new_complaint", "channel") => json!("email"),
        ("new_complaint", "received") => json!(pick(
            "donderdag 19 november 2026 om 10:15",
            "Thursday 19 November 2026 at 10:15"
        )),
        ("new_complaint" | "ack_warning", "acknowledge_by") => json!(pick(
            "maandag 23 november 2026 om 17:00",
            "Monday 23 November 2026 at 17:00"
        )),
        ("new_complaint", "respond_by") => json!(at("thu", "17:00")),
        ("new_complaint", "resolve_by") => json!(at("jan", "17:00")),
        ("new_complaint", "excerpt") => json!(pick(
            "Geachte heer, mevrouw,\n\nDe factuur van oktober klopt niet: er staan uren op die niet zijn gewerkt …",
            "Dear Sir or Madam,\n\nThe October invoice is wrong: it lists hours that were not worked …"
        )),
        // The shape and the wording `partners::assign::Reason` gives (a test there holds
        // them to it); `assigned_because` is English in every language, as in the history.
        ("new_complaint", "assigned") => json!({
            "how": "rule",
            "rule": 2,
            "passed": [{ "name": "Bob Jansen", "rule": 1, "default": false }],
        }),
        ("new_complaint", "assigned_because") => json!(
            "assignment rule 2 matched; Bob Jansen (rule 1) is named in the complaint and is not assigned it"
        ),
        ("new_complaint", "acknowledged") => json!(true),
        ("new_complaints", "count") => json!(2),
        // Each case as `new_complaint` has it, the excerpt on one line.
        ("new_complaints", "cases") => {
            let case = |reference: &str, complainant: &str, acknowledged: bool| {
                let mut c = serde_json::Map::new();
                for var in self::kind("new_complaint")
                    .map(|k| k.vars)
                    .unwrap_or_default()
                {
                    if *var == "partner" {
                        continue;
                    }
                    let v = partners_sample("new_complaint", var, en)
                        .unwrap_or_else(|| json!(pick("Factuur klopt niet", "Invoice is wrong")));
                    c.insert(var.to_string(), v);
                }
                c.insert("reference".into(), json!(reference));
                c.insert("complainant".into(), json!(complainant));
                c.insert("acknowledged".into(), json!(acknowledged));
                let excerpt = c["excerpt"]
                    .as_str()
                    .unwrap_or_default()
                    .replace("\n\n", " ");
                c.insert("excerpt".into(), json!(excerpt));
                serde_json::Value::Object(c)
            };
            json!([
                case("KL-2026-0042", "Jan de Vries <jan@example.nl>", true),
                case("KL-2026-0043", "", false),
            ])
        }
        ("ack_warning", "phone") => json!("020-1234567"),
        ("ack_warning", "cause") => json!("send_failed"),
        ("ack_warning", "error") => {
            json!("550 5.1.1 <redacted>: Recipient address rejected")
        }
        ("reminders", "day") => json!(pick("maandag 7 december 2026", "Monday 7 December 2026")),
        ("reminders", "reminders") => json!([
            reminder("KL-2026-0042", "response", 0),
            reminder("KL-2026-0040", "resolution", 3),
            reminder("KL-2026-0038", "response", -1),
        ]),
        ("reminders", "escalations") => json!([reminder("KL-2026-0031", "resolution", -2)]),
        ("command_reply", "subject") => json!(pick(
            "[KL-2026-0042] Nieuwe klacht: Factuur klopt niet",
            "[KL-2026-0042] New complaint: Invoice is wrong"
        )),
        ("command_reply", "refused") => json!(false),
        ("command_reply", "done") => json!(["KL-2026-0042: status now investigating"]),
        ("command_reply", "failed") => {
            json!(["#assign Piet: \"Piet\" is not a partner (give a partner's name or address)"])
        }
        ("command_reply", "not_understood") => json!(["#sluit tevreden: #sluit is not a command"]),
        ("digest", "date") => json!("07-12-2026"),
        ("digest", "at") => json!(at("mon", "08:00")),
        ("digest", "since") => json!(pick(
            "maandag 30 november 2026 om 08:00",
            "Monday 30 November 2026 at 08:00"
        )),
        ("digest", "open") => json!([
            {
                "reference": "KL-2026-0042", "complainant": "Jan de Vries <jan@example.nl>",
                "partner": "Anna de Boer", "age": 12, "status": "investigating",
                "deadline": "response", "due": at("thu", "17:00"), "standing": "overdue",
            },
            {
                "reference": "KL-2026-0045", "complainant": "", "partner": "Bob Jansen",
                "age": 2, "status": "new", "deadline": "acknowledge",
                "due": at("fri", "17:00"), "standing": "at_risk",
            },
        ]),
        ("digest", "closed") => json!([{
            "reference": "KL-2026-0039", "partner": "Bob Jansen", "status": "closed",
            "closed_at": at("fri", "11:20"), "satisfied": true, "structural": null,
            "measure": pick("Facturen worden dubbel gecontroleerd", "Invoices are checked twice"),
        }]),
        ("digest", "problems") => json!({
            "outages": [{
                "channel": "mailbox", "since": at("fri", "16:40"),
                "error": "cannot log in: authentication failed",
            }],
            "quarantined": [{
                "reference": "Q-0007", "received": at("fri", "09:12"),
                "reason": pick("de mail kon niet worden opgeslagen", "the mail could not be stored"),
            }],
            "acknowledgements": [
                {"reference": "KL-2026-0045", "partner": "Bob Jansen", "cause": "no_address", "error": ""},
                {
                    "reference": "KL-2026-0044", "partner": "Anna de Boer", "cause": "send_failed",
                    "error": "550 5.1.1 <redacted>: Recipient address rejected",
                },
            ],
            "unfiled": [{
                "number": 17, "sender": "mailer-daemon@example.nl", "received": at("fri", "10:03"),
                "kind": "bounce", "case": "KL-2026-0044",
                "reason": "a delivery status notification (multipart/report)",
            }],
            "unfiled_more": 3,
            "not_sent": [{"purpose": "extension", "reference": "KL-2026-0040"}],
            "unparseable": 1,
        }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_renders_in_both_languages() {
        let set = TemplateSet::builtin().unwrap();
        assert_eq!(set.check(), Vec::<String>::new());
        let r = set
            .render(
                "triage_notice",
                Lang::En,
                sample(kind("triage_notice").unwrap(), Lang::En),
            )
            .unwrap();
        assert_eq!(r.subject, "[KL-2026-0042] Message to review");
        let html = r.html.unwrap();
        assert!(html.contains("<p>A message arrived"), "{html}");
    }

    #[test]
    fn a_firms_file_overrides_and_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("acknowledgement.nl.txt"),
            "Subject: Ontvangen {{ reference }}\n\nHallo {{ name }}.\n",
        )
        .unwrap();
        let set = TemplateSet::load(Some(dir.path()), &[]).unwrap();
        let r = set
            .render(
                "acknowledgement",
                Lang::Nl,
                sample(kind("acknowledgement").unwrap(), Lang::Nl),
            )
            .unwrap();
        assert_eq!(r.subject, "Ontvangen KL-2026-0042");
        assert_eq!(r.text, "Hallo Jan de Vries.\n");

        // A syntax error, an unknown variable, an old placeholder, a misspelt file.
        std::fs::write(
            dir.path().join("extension.en.txt"),
            "Subject: x\n\nline two\n{% if %}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("triage_notice.nl.txt"),
            "Subject: {{ reference }}\n\nWaarom: {{ reden }}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("held_notice.en.txt"),
            "Subject: {reference} failed\n\ntext\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("acknowledgment.nl.txt"), "x").unwrap();
        // A retired mail's file is no problem.
        std::fs::write(dir.path().join("send_failed.nl.txt"), "Subject: x\n\ny\n").unwrap();
        let problems = TemplateSet::load(Some(dir.path()), &[]).unwrap_err();
        let all = problems.join("\n");
        assert!(all.contains("extension.en.txt:4: syntax error"), "{all}");
        assert!(
            all.contains("held_notice.en.txt:1: {reference} is the old placeholder form"),
            "{all}"
        );
        assert!(
            all.contains("acknowledgment.nl.txt: not a template"),
            "{all}"
        );
        assert!(!all.contains("send_failed.nl.txt"), "{all}");
        // The unknown variable shows when rendered (check-config renders every template).
        std::fs::remove_file(dir.path().join("extension.en.txt")).unwrap();
        std::fs::remove_file(dir.path().join("held_notice.en.txt")).unwrap();
        std::fs::remove_file(dir.path().join("acknowledgment.nl.txt")).unwrap();
        let set = TemplateSet::load(Some(dir.path()), &[]).unwrap();
        let all = set.check().join("\n");
        assert!(
            all.contains("triage_notice.nl.txt:3: undefined value"),
            "{all}"
        );
    }

    #[test]
    fn errors_in_the_partners_templates_and_their_pieces_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("digest.en.txt"),
            "Subject: {{ date }}\n\n{% for c in open %}\n{{ c.referense }}\n{% endfor %}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("commands.nl.txt"),
            "Opdrachten:\n{% if several %}\n",
        )
        .unwrap();
        let problems = TemplateSet::load(Some(dir.path()), &[]).unwrap_err();
        let all = problems.join("\n");
        assert!(all.contains("commands.nl.txt:2: syntax error"), "{all}");
        std::fs::write(dir.path().join("commands.nl.txt"), "Opdrachten: {{ x }}\n").unwrap();
        let set = TemplateSet::load(Some(dir.path()), &[]).unwrap();
        let all = set.check().join("\n");
        assert!(all.contains("digest.en.txt:4: undefined value"), "{all}");
        // An error in the included piece names the piece, for every mail that includes it.
        assert!(all.contains("commands.nl.txt:1: undefined value"), "{all}");
    }

    #[test]
    fn values_are_never_read_as_template_text() {
        let set = TemplateSet::builtin().unwrap();
        let mut vars: std::collections::BTreeMap<&str, Value> = std::collections::BTreeMap::new();
        let k = kind("acknowledgement").unwrap();
        for var in k.vars {
            vars.insert(
                var,
                Value::from("{{ partner }} {partner} {% if 1 %}x{% endif %} <b>&"),
            );
        }
        vars.insert("firm", Value::from("F"));
        let r = set
            .render("acknowledgement", Lang::Nl, Value::from_serialize(&vars))
            .unwrap();
        assert!(
            r.subject
                .contains("{{ partner }} {partner} {% if 1 %}x{% endif %}"),
            "{}",
            r.subject
        );
        assert!(
            r.text.contains("Geachte {{ partner }} {partner}"),
            "{}",
            r.text
        );
        let html = r.html.unwrap();
        assert!(
            html.contains("{{ partner }} {partner} {% if 1 %}x{% endif %} &lt;b&gt;&amp;"),
            "{html}"
        );
        assert!(!html.contains("<b>&"), "{html}");
    }

    #[test]
    fn an_old_per_mail_file_still_works() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ack.txt");
        std::fs::write(
            &file,
            "Beste {greeting_name},\n\n{reference} over {subject}; {x}\n",
        )
        .unwrap();
        let set = TemplateSet::load(None, &[("acknowledgement", file)]).unwrap();
        let mut vars = std::collections::BTreeMap::new();
        for var in kind("acknowledgement").unwrap().vars {
            vars.insert(*var, Value::from(""));
        }
        vars.insert("firm", Value::from("F"));
        vars.insert("reference", Value::from("KL-1"));
        let r = set
            .render("acknowledgement", Lang::En, Value::from_serialize(&vars))
            .unwrap();
        assert_eq!(
            r.text,
            "Beste heer, mevrouw,\n\nKL-1 over (geen onderwerp); {x}\n"
        );
        assert_eq!(
            r.subject,
            "[KL-1] Acknowledgement of your complaint: (no subject)"
        );
        assert_eq!(
            r.html, None,
            "the firm's text is not paired with the built-in HTML"
        );
    }

    #[test]
    fn a_missing_variable_is_a_bug_not_an_empty_string() {
        let set = TemplateSet::builtin().unwrap();
        let e = set
            .render(
                "held_notice",
                Lang::Nl,
                context! { firm => "F", reference => "KL-1" },
            )
            .unwrap_err();
        assert!(e.problem.contains("partner"), "{e}");
    }
}
