//! The console's pages as HTML. Every value from the database goes through maud's
//! escaping (bodies, task ids and errors are attacker text); nothing is written with
//! `PreEscaped` but the chart this crate draws.

use std::time::Duration;

use maud::{DOCTYPE, Markup, html};

use super::chart;
use super::format::{FilterForm, age, cut, utc};
use crate::inbox::{
    Count, EventDetail, EventPage, EventRow, EventState, ExpectedRow, LIST_ERROR_CHARS, Overview,
};
use crate::{CallbackEvent, Family};

/// What every page needs: where the console is mounted and what the viewer may do.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) who: &'a str,
    /// The CSRF token of the viewer's forms, `None` when they may not act.
    pub(crate) csrf: Option<&'a str>,
    pub(crate) login: bool,
}

impl Frame<'_> {
    fn link(&self, path: &str) -> String {
        super::link(self.prefix, path)
    }

    /// A `POST` form to `path` with the CSRF field, `fields` hidden, and one button;
    /// nothing for a read-only viewer.
    fn action(&self, path: &str, fields: &[(&str, String)], label: &str, class: &str) -> Markup {
        let Some(csrf) = self.csrf else {
            return html! {};
        };
        html! {
            form method="post" action=(self.link(path)) class="action" {
                input type="hidden" name="csrf" value=(csrf);
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                button type="submit" class=(class) { (label) }
            }
        }
    }
}

const STATES: [EventState; 4] = [
    EventState::Pending,
    EventState::Running,
    EventState::Done,
    EventState::Dead,
];

fn layout(frame: &Frame<'_>, title: &str, note: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · inbox console" }
                link rel="stylesheet" href=(frame.link("/console.css"));
            }
            body {
                header {
                    nav {
                        a href=(frame.link("/")) { "Overview" }
                        a href=(frame.link("/events")) { "Events" }
                        a href=(frame.link("/events?state=dead")) { "Dead" }
                        a href=(frame.link("/expected")) { "Expected tasks" }
                    }
                    div class="who" {
                        (frame.who)
                        @if frame.csrf.is_none() { " · read-only" }
                        @if frame.login {
                            form method="post" action=(frame.link("/logout")) class="inline" {
                                button type="submit" class="link" { "log out" }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some(note) = note { p class="note" role="status" { (note) } }
                    (body)
                }
            }
        }
    }
}

fn count(count: Count) -> Markup {
    match count {
        Count::Exact(n) => html! { (n) },
        Count::AtLeast(n) => {
            html! { span class="estimate" title="counting stopped here" { "> " (n.saturating_sub(1)) } }
        }
        Count::Estimated(n) => {
            html! { span class="estimate" title="estimated from the database's statistics" { "≈ " (n) " (estimated)" } }
        }
    }
}

fn state_badge(state: EventState) -> Markup {
    html! { span class=(format!("badge {}", state.as_str())) { (state.as_str()) } }
}

/// The overview page.
pub(crate) fn overview(frame: &Frame<'_>, overview: &Overview, note: Option<&str>) -> Markup {
    let body = html! {
        section class="cards" {
            @for (state, n) in &overview.states {
                a class=(format!("card {}", state.as_str())) href=(frame.link(&format!("/events?state={}", state.as_str()))) {
                    span class="label" { (state.as_str()) }
                    span class="value" { (count(*n)) }
                }
            }
            div class="card" {
                span class="label" { "oldest pending" }
                span class="value" {
                    @match overview.oldest_pending_age {
                        Some(oldest) => (age(oldest)),
                        None => "none",
                    }
                }
            }
        }
        p { "All events: " (count(overview.total)) }
        h2 { "Last hour" }
        (chart::per_minute(&overview.minutes))
        h2 { "By family" }
        @if overview.families.is_empty() {
            p { "No events." }
        } @else {
            div class="scroll" {
                table {
                    thead { tr { th { "family" } th class="num" { "events" } } }
                    tbody {
                        @for (family, n) in &overview.families {
                            tr {
                                td { a href=(frame.link(&format!("/events?family={family}"))) { (family) } }
                                td class="num" { (count(*n)) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(expected) = &overview.expected {
            h2 { "Expected tasks" }
            p {
                a href=(frame.link("/expected")) { (count(expected.total)) " registered" }
                ", " (count(expected.due)) " due, " (count(expected.overdue)) " overdue"
            }
        }
        @if frame.csrf.is_some() {
            h2 { "Maintenance" }
            (frame.action("/prune", &[], "Prune finished events now", "secondary"))
        }
    };
    layout(frame, "Inbox overview", note, body)
}

fn filters(frame: &Frame<'_>, form: &FilterForm) -> Markup {
    let filter = &form.filter;
    let families = Family::ALL
        .iter()
        .map(|family| family.as_str())
        .chain(["unknown"]);
    html! {
        form method="get" action=(frame.link("/events")) class="filters" {
            label { "state "
                select name="state" {
                    option value="" { "any" }
                    @for state in STATES {
                        option value=(state.as_str()) selected[filter.state == Some(state)] { (state.as_str()) }
                    }
                }
            }
            label { "family "
                select name="family" {
                    option value="" { "any" }
                    @for family in families {
                        option value=(family) selected[filter.family.as_deref() == Some(family)] { (family) }
                    }
                }
            }
            label { "outcome "
                select name="outcome" {
                    option value="" { "any" }
                    @for outcome in ["success", "failure"] {
                        option value=(outcome) selected[filter.outcome.as_deref() == Some(outcome)] { (outcome) }
                    }
                }
            }
            label { "task "
                input type="search" name="task" value=(filter.task_id.as_deref().unwrap_or("")) size="20";
            }
            label { "from (UTC) "
                input type="datetime-local" name="from" value=(filter.received_from_ms.map(super::format::input_time).unwrap_or_default());
            }
            label { "until (UTC) "
                input type="datetime-local" name="until" value=(filter.received_until_ms.map(super::format::input_time).unwrap_or_default());
            }
            button type="submit" { "Filter" }
        }
    }
}

fn rows(frame: &Frame<'_>, events: &[EventRow]) -> Markup {
    html! {
        div class="scroll" {
            table class="events" {
                thead {
                    tr {
                        th class="num" { "id" } th { "task" } th { "family" } th { "stage" }
                        th { "outcome" } th { "state" } th class="num" { "attempts" }
                        th { "received (UTC)" } th { "last error" }
                    }
                }
                tbody {
                    @for event in events {
                        tr {
                            td class="num" { a href=(frame.link(&format!("/events/{}", event.id))) { (event.id) } }
                            td class="mono" { (cut(&event.task_id, 40)) }
                            td { (event.family) }
                            td { (event.stage) }
                            td { (event.outcome) }
                            td { (state_badge(event.state)) }
                            td class="num" { (event.attempts) }
                            td class="time" { (utc(event.received_at_ms)) }
                            td class="error" { (event.last_error.as_deref().map(|e| cut(e, LIST_ERROR_CHARS)).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    }
}

/// The events page.
pub(crate) fn events(
    frame: &Frame<'_>,
    form: &FilterForm,
    page: &EventPage,
    matching: Count,
    note: Option<&str>,
) -> Markup {
    let body = html! {
        (filters(frame, form))
        p { (count(matching)) " matching, newest first." }
        @if page.events.is_empty() {
            p { "No events." }
        } @else {
            (rows(frame, &page.events))
        }
        nav class="pages" {
            @if form.before.is_some() {
                a href=(frame.link(&format!("/events?{}", form.query(None)))) { "« newest" }
            }
            @if let Some(next) = page.next_before {
                a href=(frame.link(&format!("/events?{}", form.query(Some(next))))) rel="next" { "older »" }
            }
        }
        @if frame.csrf.is_some() && matching.value() > 0 {
            h2 { "Replay" }
            p { "Replays the done and dead events this filter takes (a preview with the count comes first)." }
            (frame.action("/replay", &form.pairs(), "Replay matching…", "secondary"))
        }
    };
    layout(frame, "Events", note, body)
}

/// The typed summary of a stored body, or why there is none.
fn summary(detail: &EventDetail) -> Markup {
    let family = Family::from_name(&detail.row.family);
    let parsed = match family {
        Some(family) => CallbackEvent::from_json_as(family, detail.body.clone()),
        None => CallbackEvent::from_json(detail.body.clone()),
    };
    match parsed {
        Ok(event) => html! {
            dl {
                dt { "code" } dd { (event.code()) }
                @if let Some(msg) = event.msg() { dt { "message" } dd { (cut(msg, 300)) } }
                @if let Some(detail) = event.error_detail() { dt { "error" } dd { (cut(detail, 300)) } }
                dt { "tracks" } dd { (event.tracks().len()) }
            }
            @if !event.tracks().is_empty() {
                div class="scroll" {
                    table {
                        thead { tr { th { "id" } th { "title" } th { "duration" } th { "audio" } th { "image" } } }
                        tbody {
                            @for track in event.tracks().iter().take(50) {
                                tr {
                                    td class="mono" { (cut(track.id().unwrap_or(""), 40)) }
                                    td { (cut(track.title().unwrap_or(""), 120)) }
                                    td class="num" { (track.duration_seconds().map(|s| format!("{s:.1} s")).unwrap_or_default()) }
                                    td class="url" { (cut(track.audio_url().unwrap_or(""), 200)) }
                                    td class="url" { (cut(track.image_url().unwrap_or(""), 200)) }
                                }
                            }
                        }
                    }
                }
            }
        },
        Err(error) => {
            html! { p { "The body does not read as a callback: " (cut(&error.to_string(), 300)) } }
        }
    }
}

/// The longest body shown (pretty-printed); the rest is cut.
const MAX_BODY_SHOWN: usize = 64 * 1024;

/// The body pretty-printed, at most [`MAX_BODY_SHOWN`] characters. The printing stops
/// at the cap: a deeply nested body indents every line by its depth, so its whole
/// pretty text could be a hundred times its own size.
fn pretty(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        let shown = &body[..body.len().min(MAX_BODY_SHOWN * 4)];
        return cut(&String::from_utf8_lossy(shown), MAX_BODY_SHOWN);
    };
    let mut out = CappedWriter {
        bytes: Vec::new(),
        // A character is at most four bytes: the cap in characters is applied below.
        cap: MAX_BODY_SHOWN * 4,
    };
    let complete = serde_json::to_writer_pretty(&mut out, &value).is_ok();
    let shown = cut(&String::from_utf8_lossy(&out.bytes), MAX_BODY_SHOWN);
    if complete || shown.ends_with('…') {
        shown
    } else {
        shown + "…"
    }
}

/// A writer that keeps its first `cap` bytes, then refuses.
struct CappedWriter {
    bytes: Vec<u8>,
    cap: usize,
}

impl std::io::Write for CappedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.cap - self.bytes.len();
        if room == 0 {
            return Err(std::io::Error::other("cut short"));
        }
        let taken = buf.len().min(room);
        self.bytes.extend_from_slice(&buf[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The event page.
pub(crate) fn event(frame: &Frame<'_>, detail: &EventDetail, note: Option<&str>) -> Markup {
    let row = &detail.row;
    let finished = matches!(row.state, EventState::Done | EventState::Dead);
    let body = html! {
        dl class="facts" {
            dt { "task" } dd class="mono" { (row.task_id) }
            dt { "key" } dd class="mono" { (row.family) " / " (if row.stage.is_empty() { "(no stage)" } else { &row.stage }) " / " (row.outcome) }
            dt { "state" } dd { (state_badge(row.state)) }
            dt { "attempts" } dd { (row.attempts) }
            dt { "received" } dd { (utc(row.received_at_ms)) " UTC" }
            @if let Some(finished) = row.finished_at_ms { dt { "finished" } dd { (utc(finished)) " UTC" } }
            @if !finished {
                dt { (if row.state == EventState::Running { "lease ends" } else { "runs after" }) }
                dd { (utc(detail.run_after_ms)) " UTC" }
            }
            @if let Some(error) = &row.last_error { dt { "last error" } dd class="error" { (error) } }
        }
        @if frame.csrf.is_some() {
            div class="actions" {
                @if finished {
                    (frame.action(&format!("/events/{}/replay", row.id), &[], "Replay this event", "primary"))
                }
                (frame.action("/tasks/replay", &[("task", row.task_id.clone())], "Replay the task's finished events", "secondary"))
                @if row.state == EventState::Dead {
                    (frame.action(&format!("/events/{}/discard", row.id), &[], "Discard (delete) this dead event", "danger"))
                }
            }
        }
        h2 { "Summary" }
        (summary(detail))
        h2 { "Body" }
        pre class="body" { code { (pretty(&detail.body)) } }
        h2 { "The task's other events" }
        @if detail.siblings.is_empty() {
            p { "None." }
        } @else {
            (rows(frame, &detail.siblings))
        }
    };
    layout(frame, &format!("Event {}", row.id), note, body)
}

/// The bulk replay preview: the count, the cap, and the confirmation form.
pub(crate) fn replay_preview(
    frame: &Frame<'_>,
    form: &FilterForm,
    matching: Count,
    cap: u64,
) -> Markup {
    let mut fields = form.pairs();
    fields.push(("confirm", "yes".to_owned()));
    let shown = matching.value().min(cap);
    let body = html! {
        p { (count(matching)) " finished (done or dead) events match this filter." }
        @if matching.value() > cap {
            p class="note" { "At most " (cap) " are replayed at once, the newest first: replay again for the rest." }
        }
        ul {
            @for (name, value) in form.pairs() { li { (name) ": " span class="mono" { (value) } } }
            @if form.pairs().is_empty() { li { "no filter: every finished event" } }
        }
        @if shown > 0 {
            (frame.action("/replay", &fields, &format!("Yes, replay {shown} events"), "primary"))
        }
        p { a href=(frame.link(&format!("/events?{}", form.query(None)))) { "Cancel" } }
    };
    layout(frame, "Replay matching events?", None, body)
}

/// The expected tasks page.
pub(crate) fn expected(
    frame: &Frame<'_>,
    rows: &[ExpectedRow],
    now_ms: i64,
    overdue_after: Duration,
    next: Option<String>,
    note: Option<&str>,
) -> Markup {
    let overdue_ms = i64::try_from(overdue_after.as_millis()).unwrap_or(i64::MAX);
    let body = html! {
        p { "Tasks the reconciler polls the provider for until their outcome arrives, the soonest due first, with what each one's last poll got." }
        @if rows.is_empty() {
            p { "No expected tasks." }
        } @else {
            div class="scroll" {
                table {
                    thead { tr { th { "task" } th { "family" } th { "registered (UTC)" } th { "due (UTC)" } th { "status" } th { "last poll" } @if frame.csrf.is_some() { th {} } } }
                    tbody {
                        @for row in rows {
                            tr {
                                td class="mono" { (cut(&row.task_id, 40)) }
                                td { (row.family) }
                                td class="time" { (utc(row.registered_at_ms)) }
                                td class="time" { (utc(row.due_at_ms)) }
                                td {
                                    @if now_ms.saturating_sub(row.registered_at_ms) > overdue_ms {
                                        span class="badge dead" { "overdue" }
                                    } @else if row.due_at_ms <= now_ms {
                                        span class="badge pending" { "due" }
                                    } @else {
                                        "waiting"
                                    }
                                }
                                td class="answer" {
                                    @if let Some((answer, polled_at_ms)) = &row.last_poll {
                                        span class="time" { (utc(*polled_at_ms)) } " " (cut(answer, 120))
                                    } @else {
                                        "not polled yet"
                                    }
                                }
                                @if frame.csrf.is_some() {
                                    td { (frame.action("/expected/poll", &[("task", row.task_id.clone())], "Poll now", "secondary")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            nav class="pages" { a href=(frame.link(&format!("/expected?{next}"))) rel="next" { "later »" } }
        }
    };
    layout(frame, "Expected tasks", note, body)
}

/// The login form.
pub(crate) fn login(prefix: &str, failed: bool) -> Markup {
    let action = format!("{prefix}/login");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · inbox console" }
                link rel="stylesheet" href=(format!("{prefix}/console.css"));
            }
            body {
                main class="login" {
                    h1 { "Inbox console" }
                    @if failed { p class="note" role="alert" { "That token is not valid." } }
                    form method="post" action=(action) {
                        label { "Access token" input type="password" name="token" autocomplete="current-password" required; }
                        button type="submit" class="primary" { "Log in" }
                    }
                }
            }
        }
    }
}

/// A short page for an error status.
pub(crate) fn error(prefix: &str, title: &str, text: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href=(format!("{prefix}/console.css"));
            }
            body { main { h1 { (title) } p { (text) } p { a href=(super::link(prefix, "/")) { "Overview" } } } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn a_deep_body_is_printed_no_further_than_the_cap() {
        // 120 levels of arrays around many small numbers: every number on a line of
        // its own, indented by 240 spaces.
        let body = format!(
            r#"{{"code":200,"data":{{"taskId":"t","x":{}{}{}}}}}"#,
            "[".repeat(120),
            ["0"; 20_000].join(","),
            "]".repeat(120)
        );
        let shown = pretty(body.as_bytes());
        assert!(shown.ends_with('…'), "cut short");
        assert!(
            shown.chars().count() <= MAX_BODY_SHOWN + 1,
            "{}",
            shown.len()
        );
        assert!(shown.starts_with("{\n  \"code\": 200"), "{}", &shown[..40]);
        // A small body is shown whole.
        let small = pretty(br#"{"code":200}"#);
        assert_eq!(small, "{\n  \"code\": 200\n}");
        // Text that is not JSON is shown as text, cut the same way.
        assert_eq!(pretty(b"not json"), "not json");
    }

    #[test]
    fn a_script_in_a_body_stays_text() {
        let frame = Frame {
            prefix: "/console",
            who: "token 1",
            csrf: Some("c"),
            login: false,
        };
        let detail = EventDetail {
            row: EventRow {
                id: 7,
                task_id: "<img src=x onerror=alert(1)>".into(),
                family: "music".into(),
                stage: "complete".into(),
                outcome: "success".into(),
                state: EventState::Dead,
                attempts: 3,
                received_at_ms: 0,
                finished_at_ms: Some(0),
                last_error: Some("<script>alert(2)</script>".into()),
            },
            run_after_ms: 0,
            body: Bytes::from_static(
                br#"{"code":200,"msg":"ok","data":{"callbackType":"complete","task_id":"t","data":[{"id":"a","title":"<script>alert(3)</script>"}]}}"#,
            ),
            siblings: Vec::new(),
        };
        let page = event(&frame, &detail, None).into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(3)"),
            "the title is shown, escaped"
        );
        assert!(page.contains(r#"name="csrf" value="c""#));
    }

    #[test]
    fn a_read_only_viewer_gets_no_form() {
        let frame = Frame {
            prefix: "/console",
            who: "auditor",
            csrf: None,
            login: false,
        };
        let page = EventPage::default();
        let html =
            events(&frame, &FilterForm::default(), &page, Count::Exact(3), None).into_string();
        assert!(!html.contains(r#"method="post""#), "{html}");
    }
}
