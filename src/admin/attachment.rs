//! Attachments of a held message: listed on the message page; downloadable
//! by admins only, after a warning page, as `application/octet-stream` with
//! `Content-Disposition: attachment` so the browser never renders them.
//! Every download is in the audit log.

use super::auth::Authed;
use super::html::{self, csrf_field, esc};
use super::message::visible_item;
use crate::access::{self, Role};
use crate::incidents::HeldItem;
use crate::quarantine::Store;
use crate::serve::Shared;
use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mail_parser::{MessageParser, MimeHeaders};
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;

/// One attachment as listed.
pub struct Listed {
    pub name: String,
    pub content_type: String,
    pub size: usize,
}

fn parse_list(raw: &[u8]) -> Vec<Listed> {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    msg.attachments()
        .map(|p| Listed {
            name: p.attachment_name().unwrap_or("(no name)").to_string(),
            content_type: p
                .content_type()
                .map(|c| match c.subtype() {
                    Some(s) => format!("{}/{}", c.ctype(), s),
                    None => c.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: p.len(),
        })
        .collect()
}

/// Attachment `n` (name, bytes).
fn nth(raw: &[u8], n: usize) -> Option<(String, Vec<u8>)> {
    let msg = MessageParser::default().parse(raw)?;
    let part = msg.attachments().nth(n)?;
    Some((
        part.attachment_name().unwrap_or("attachment").to_string(),
        part.contents().to_vec(),
    ))
}

/// A file name safe for `Content-Disposition`: ASCII letters, digits and
/// `.-_` only, never starting with a dot, with `.bin` appended so nothing
/// opens on a double click.
pub fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut s: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    while s.starts_with('.') {
        s.remove(0);
    }
    if s.is_empty() {
        s = "attachment".into();
    }
    s.push_str(".bin");
    s
}

fn read_raw(store: &Store, id: &str) -> Option<Vec<u8>> {
    std::fs::read(store.message_path(id)).ok()
}

/// The attachment list on the message page (links for admins only).
pub fn list(b: &mut String, store: &Store, item: &HeldItem, role: Role) {
    let Some(raw) = read_raw(store, &item.id) else {
        return;
    };
    let listed = parse_list(&raw);
    if listed.is_empty() {
        return;
    }
    b.push_str(r#"<h2>Attachments</h2><table class="attachments"><thead><tr><th>Name</th><th>Type</th><th>Size</th><th></th></tr></thead><tbody>"#);
    for (i, a) in listed.iter().enumerate() {
        let link = if access::can_download_attachments(role) {
            format!(
                r#"<a href="/message/{}/attachment/{i}">Download…</a>"#,
                esc(&item.id)
            )
        } else {
            String::new()
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{link}</td></tr>",
            esc(&a.name),
            esc(&a.content_type),
            esc(&html::size(a.size as i64))
        );
    }
    b.push_str("</tbody></table>");
}

async fn admin_item(shared: &Shared, authed: &Authed, id: &str) -> Result<HeldItem, Response> {
    if !access::can_download_attachments(authed.role()) {
        return Err(authed.error(
            StatusCode::FORBIDDEN,
            "Only admins may download attachments.",
        ));
    }
    visible_item(shared, authed, id).await
}

/// `GET /message/{id}/attachment/{n}`: the warning page.
pub async fn warn(
    State(shared): State<Arc<Shared>>,
    authed: Authed,
    Path((id, n)): Path<(String, usize)>,
) -> Response {
    let item = match admin_item(&shared, &authed, &id).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Some(a) = read_raw(&shared.settings().store, &item.id)
        .map(|raw| parse_list(&raw))
        .and_then(|l| l.into_iter().nth(n))
    else {
        return authed.error(StatusCode::NOT_FOUND, "No such attachment.");
    };
    let virus = item.categories.iter().any(|c| c == "virus");
    let mut b = String::new();
    let _ = write!(
        b,
        r#"<p class="warning">This file was held by the content filter{}. Opening it can infect or damage this computer. Download it only to inspect it in a safe place (for example a virus scanner or an isolated machine). The download is recorded in the audit log.</p>
<table class="meta"><tbody><tr><th>Name</th><td>{}</td></tr><tr><th>Type (as claimed)</th><td>{}</td></tr><tr><th>Size</th><td>{}</td></tr></tbody></table>
<form method="post" action="/message/{}/attachment/{n}">{}<button type="submit">I understand — download</button></form>
<p><a href="/message/{}">Back to the message</a></p>"#,
        if virus { " and contains a virus" } else { "" },
        esc(&a.name),
        esc(&a.content_type),
        esc(&html::size(a.size as i64)),
        esc(&item.id),
        csrf_field(&authed.session.csrf),
        esc(&item.id)
    );
    html::respond(
        StatusCode::OK,
        html::page("Download attachment", Some(&authed.nav()), &b),
    )
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /message/{id}/attachment/{n}`: the file itself.
pub async fn download(
    State(shared): State<Arc<Shared>>,
    authed: Authed,
    Path((id, n)): Path<(String, usize)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !authed.csrf_ok(&form.csrf) {
        return authed.csrf_refused();
    }
    let item = match admin_item(&shared, &authed, &id).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let settings = shared.settings();
    let Some((name, bytes)) = read_raw(&settings.store, &item.id).and_then(|raw| nth(&raw, n))
    else {
        return authed.error(StatusCode::NOT_FOUND, "No such attachment.");
    };
    let detail = format!("attachment {n}: {}", safe_file_name(&name));
    authed
        .audit(
            &settings.incidents,
            "download",
            Some(&item.id),
            None,
            Some(&detail),
        )
        .await;
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", safe_file_name(&name)),
            ),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_defanged() {
        assert_eq!(safe_file_name("report.pdf"), "report.pdf.bin");
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd.bin");
        assert_eq!(safe_file_name("a\"b;\r\nc.exe"), "a_b___c.exe.bin");
        assert_eq!(safe_file_name("..."), "attachment.bin");
        assert_eq!(safe_file_name("C:\\x\\évil.js"), "_vil.js.bin");
    }

    #[test]
    fn lists_and_extracts_attachments() {
        let raw = b"From: a@b\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=\"a.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--XX--\r\n";
        let l = parse_list(raw);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].name, "a.zip");
        assert_eq!(l[0].content_type, "application/zip");
        assert_eq!(nth(raw, 0).unwrap().1, b"PK\x03\x04");
        assert!(nth(raw, 1).is_none());
    }
}
