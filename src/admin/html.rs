//! HTML output: escaping and the page layout. Every value that did not come
//! from a string literal in this module goes through [`esc`]; attribute
//! values are always double-quoted.

use crate::access::Role;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// Escape text for HTML element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab/newline never reach the page.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Unix seconds as `YYYY-MM-DD HH:MM` in UK time (Europe/London).
pub fn time(secs: i64) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(secs) else {
        return secs.to_string();
    };
    match jiff::tz::TimeZone::get("Europe/London") {
        Ok(tz) => ts
            .to_zoned_datetime(tz)
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => ts.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// A `YYYY-MM-DD` form date as unix seconds at the start of that day in UK
/// time; `end_of_day` gives the last second of the day instead.
pub fn parse_date(s: &str, end_of_day: bool) -> Option<i64> {
    let date: jiff::civil::Date = s.trim().parse().ok()?;
    let tz = jiff::tz::TimeZone::get("Europe/London").unwrap_or(jiff::tz::TimeZone::UTC);
    let start = date.to_zoned_datetime(tz).ok()?.timestamp().as_second();
    Some(if end_of_day {
        start + 24 * 60 * 60 - 1
    } else {
        start
    })
}

/// Human size.
pub fn size(bytes: i64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else if bytes >= 1024 {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// Where a signed-in user's navigation goes.
pub struct Nav<'a> {
    pub user: &'a str,
    pub role: Role,
    pub csrf: &'a str,
}

/// A whole page: `title` is escaped here, `body` must already be HTML.
pub fn page(title: &str, nav: Option<&Nav<'_>>, body: &str) -> String {
    let mut links = String::new();
    if let Some(nav) = nav {
        links.push_str("<nav><ul>");
        if nav.role != Role::Governor {
            links.push_str(r#"<li><a href="/">Held messages</a></li>"#);
            links.push_str(r#"<li><a href="/incidents">Incident history</a></li>"#);
        }
        if nav.role == Role::Admin {
            links.push_str(r#"<li><a href="/audit">Audit log</a></li>"#);
        }
        links.push_str(r#"<li><a href="/summaries">Weekly summaries</a></li>"#);
        links.push_str("</ul>");
        links.push_str(&format!(
            r#"<form method="post" action="/logout" class="logout"><span>{} ({})</span>{}<button type="submit">Log out</button></form>"#,
            esc(nav.user),
            esc(nav.role.as_str()),
            csrf_field(nav.csrf)
        ));
        links.push_str("</nav>");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en-GB\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — hallmonitor</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head>\
         <body><header><span class=\"brand\">hallmonitor</span>{links}</header><main>\
         <h1>{}</h1>{body}</main></body></html>\n",
        esc(title),
        esc(title)
    )
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(token: &str) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        esc(token)
    )
}

/// An HTML response with the given status.
pub fn respond(status: StatusCode, html: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// A short error page.
pub fn error(status: StatusCode, nav: Option<&Nav<'_>>, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    respond(
        status,
        page(
            title,
            nav,
            &format!(r#"<p class="error">{}</p>"#, esc(message)),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        assert_eq!(esc("a\u{0}b\nc"), "a\u{FFFD}b\nc");
    }

    #[test]
    fn page_escapes_title_and_user() {
        let nav = Nav {
            user: "<b>x</b>",
            role: Role::Admin,
            csrf: "t\"",
        };
        let p = page("<i>", Some(&nav), "");
        assert!(!p.contains("<i>") && !p.contains("<b>x</b>"));
        assert!(p.contains("&lt;b&gt;x&lt;/b&gt;") && p.contains("value=\"t&quot;\""));
        assert!(p.contains("/audit"));
        let gov = Nav {
            user: "g",
            role: Role::Governor,
            csrf: "t",
        };
        let p = page("S", Some(&gov), "");
        assert!(!p.contains("href=\"/audit\"") && !p.contains("href=\"/incidents\""));
    }

    #[test]
    fn dates() {
        // 2026-07-01 is BST: the day starts at 23:00 UTC the day before.
        let start = parse_date("2026-07-01", false).unwrap();
        assert_eq!(start, 1_782_860_400);
        assert_eq!(parse_date("2026-07-01", true).unwrap(), start + 86_399);
        assert_eq!(parse_date("nonsense", false), None);
        assert!(time(start).starts_with("2026-07-01 00:00"));
    }
}
