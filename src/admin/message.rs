//! `GET /message/{id}` (metadata, findings with masked evidence, AUP
//! clauses, headers and the plain-text body — never the message's own HTML),
//! and the release and delete forms behind it.

use super::attachment;
use super::auth::{Authed, internal};
use super::html::{self, csrf_field, esc};
use super::security::valid_id;
use crate::access;
use crate::incidents::HeldItem;
use crate::release::{self, ReleaseError, ReleaseOutcome};
use crate::serve::Shared;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;

/// Longest reason accepted.
const MAX_REASON: usize = 1000;

#[derive(Deserialize, Default)]
pub struct Done {
    #[serde(default)]
    done: String,
}

/// The item if it exists and the role may see it; otherwise the response
/// (404 for both, so the page does not tell who sent what).
pub async fn visible_item(
    shared: &Shared,
    authed: &Authed,
    id: &str,
) -> Result<HeldItem, Response> {
    let not_found = || {
        authed.error(
            StatusCode::NOT_FOUND,
            "No such held message, or it is not visible to your role.",
        )
    };
    if !valid_id(id) {
        return Err(not_found());
    }
    match shared.settings().incidents.held_item(id).await {
        Ok(Some(item)) if access::can_list(authed.role(), &item) => Ok(item),
        Ok(_) => Err(not_found()),
        Err(e) => Err(internal(e)),
    }
}

fn row(b: &mut String, label: &str, value: &str) {
    let _ = write!(b, "<tr><th>{}</th><td>{}</td></tr>", esc(label), esc(value));
}

/// `GET /message/{id}`.
pub async fn show(
    State(shared): State<Arc<Shared>>,
    authed: Authed,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let item = match visible_item(&shared, &authed, &id).await {
        Ok(item) => item,
        Err(r) => return r,
    };
    let settings = shared.settings();
    let findings = match settings.incidents.findings_of(item.incident_id).await {
        Ok(f) => f,
        Err(e) => return internal(e),
    };
    let role = authed.role();
    let mut b = String::new();
    match done.done.as_str() {
        "released" => b.push_str(r#"<p class="ok" id="flash">Released: the message was delivered to its recipients.</p>"#),
        "deleted" => b.push_str(r#"<p class="ok" id="flash">Deleted.</p>"#),
        "already" => b.push_str(r#"<p class="ok" id="flash">This message had already been released; it was not delivered again.</p>"#),
        _ => {}
    }
    // Metadata.
    b.push_str(r#"<table class="meta"><tbody>"#);
    row(&mut b, "Status", &item.status);
    row(&mut b, "Held", &html::time(item.held_at));
    row(&mut b, "From (envelope)", &item.mail_from);
    if let Some(who) = &item.identified_sender {
        row(&mut b, "Identified sender", who);
    }
    row(&mut b, "To", &item.rcpts.join(", "));
    row(
        &mut b,
        "Subject",
        item.subject.as_deref().unwrap_or("(no subject)"),
    );
    row(&mut b, "Direction", &item.direction);
    row(&mut b, "Sender group", &item.sender_group);
    row(&mut b, "Categories", &item.categories.join(", "));
    row(&mut b, "Rules", &item.rules.join(", "));
    row(&mut b, "Size", &html::size(item.size));
    if let Some(m) = &item.message_id {
        row(&mut b, "Message-ID", m);
    }
    if let Some(q) = &item.queue_id {
        row(&mut b, "Queue id", q);
    }
    if let Some(by) = &item.reviewed_by {
        let at = item.reviewed_at.map(html::time).unwrap_or_default();
        row(&mut b, "Reviewed", &format!("{by}, {at}"));
    }
    if let Some(r) = &item.review_reason {
        row(&mut b, "Reason", r);
    }
    if let Some(e) = &item.last_error {
        row(&mut b, "Last delivery error", e);
    }
    b.push_str("</tbody></table>");
    // Acceptable-use clauses.
    if !item.clauses.is_empty() {
        b.push_str(r#"<h2>Acceptable use policy</h2><ul class="clauses">"#);
        for c in &item.clauses {
            let _ = write!(b, "<li>{}</li>", esc(c));
        }
        b.push_str("</ul>");
    }
    // Findings; evidence was masked before it was stored.
    b.push_str(r#"<h2>Findings</h2><table class="findings"><thead><tr><th>Category</th><th>Rule</th><th>Where</th><th>Evidence (masked)</th><th>Severity</th><th>Count</th><th>Clause</th></tr></thead><tbody>"#);
    for f in &findings {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.category),
            esc(&f.rule),
            esc(&f.location),
            esc(&f.evidence),
            esc(&f.severity),
            f.count,
            esc(&f.clause)
        );
    }
    b.push_str("</tbody></table>");
    // Actions while held.
    if item.status == "held" {
        actions(&mut b, &authed, &item);
    }
    // Headers and body, for those who may read them (each view is audited).
    if access::can_view_body(role, &item) {
        let body = {
            let actor = authed.actor();
            release::view_body(&settings.incidents, &settings.store, &item.id, &actor).await
        };
        match body {
            Ok(viewed) => {
                b.push_str(r#"<h2>Headers</h2><table class="headers"><tbody>"#);
                for (name, value) in &viewed.headers {
                    let _ = write!(b, "<tr><th>{}</th><td>{}</td></tr>", esc(name), esc(value));
                }
                b.push_str("</tbody></table>");
                b.push_str(r#"<h2>Body (plain text)</h2><p class="note">Shown as plain text: the message's own HTML, images and scripts are never loaded.</p>"#);
                let _ = write!(
                    b,
                    r#"<pre class="body" id="body">{}</pre>"#,
                    esc(&viewed.text)
                );
            }
            Err(e) => {
                let _ = write!(
                    b,
                    r#"<p class="note">The message body is not available: {}</p>"#,
                    esc(&e.to_string())
                );
            }
        }
        attachment::list(&mut b, &settings.store, &item, role);
    } else {
        b.push_str(
            r#"<p class="note">Your role may see this message's details but not its body.</p>"#,
        );
    }
    let title = format!(
        "Held message: {}",
        item.subject.as_deref().unwrap_or("(no subject)")
    );
    html::respond(StatusCode::OK, html::page(&title, Some(&authed.nav()), &b))
}

fn actions(b: &mut String, authed: &Authed, item: &HeldItem) {
    let role = authed.role();
    let csrf = csrf_field(&authed.session.csrf);
    b.push_str(r#"<h2>Decision</h2><div class="actions">"#);
    match access::can_release(role, item) {
        Ok(()) => {
            let _ = write!(
                b,
                r#"<form method="post" action="/message/{}/release" class="release">{csrf}
<label for="release-reason">Reason for releasing</label>
<textarea id="release-reason" name="reason" required maxlength="{MAX_REASON}" rows="2"></textarea>
<button type="submit" id="release">Release to recipients</button></form>"#,
                esc(&item.id)
            );
        }
        Err(why) => {
            let _ = write!(b, r#"<p class="note">Release: {}.</p>"#, esc(why));
        }
    }
    match access::can_delete(role, item) {
        Ok(()) => {
            let _ = write!(
                b,
                r#"<form method="post" action="/message/{}/delete" class="delete">{csrf}
<label for="delete-reason">Reason for deleting</label>
<textarea id="delete-reason" name="reason" required maxlength="{MAX_REASON}" rows="2"></textarea>
<button type="submit" id="delete">Delete without delivering</button></form>"#,
                esc(&item.id)
            );
        }
        Err(why) => {
            let _ = write!(b, r#"<p class="note">Delete: {}.</p>"#, esc(why));
        }
    }
    b.push_str("</div>");
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// The reason from a form, or why it is unacceptable.
fn reason(form: &ReasonForm) -> Result<String, &'static str> {
    let reason = form.reason.trim();
    if reason.is_empty() {
        return Err("A reason is required.");
    }
    if reason.chars().count() > MAX_REASON {
        return Err("The reason is too long.");
    }
    Ok(reason.to_string())
}

/// The HTTP status for a refused or failed release or delete.
fn error_status(e: &ReleaseError) -> StatusCode {
    match e {
        ReleaseError::BadId(_) | ReleaseError::NotFound(_) => StatusCode::NOT_FOUND,
        ReleaseError::Refused(_) => StatusCode::FORBIDDEN,
        ReleaseError::NoReason => StatusCode::BAD_REQUEST,
        ReleaseError::NotHeld { .. } | ReleaseError::InProgress(_) => StatusCode::CONFLICT,
        ReleaseError::Delivery { .. } | ReleaseError::NoNextHop { .. } => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What a release or delete form must pass first: the CSRF token, the item
/// being visible to this user, the role allowing the action, and a reason.
async fn review_request(
    shared: &Shared,
    authed: &Authed,
    id: &str,
    form: &ReasonForm,
    allowed: fn(access::Role, &HeldItem) -> Result<(), &'static str>,
) -> Result<(HeldItem, String), Response> {
    if !authed.csrf_ok(&form.csrf) {
        return Err(authed.csrf_refused());
    }
    let item = visible_item(shared, authed, id).await?;
    if let Err(why) = allowed(authed.role(), &item) {
        return Err(authed.error(StatusCode::FORBIDDEN, why));
    }
    let reason = reason(form).map_err(|why| authed.error(StatusCode::BAD_REQUEST, why))?;
    Ok((item, reason))
}

/// `POST /message/{id}/release`.
pub async fn release(
    State(shared): State<Arc<Shared>>,
    authed: Authed,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Response {
    let (item, reason) =
        match review_request(&shared, &authed, &id, &form, access::can_release).await {
            Ok(v) => v,
            Err(r) => return r,
        };
    let settings = shared.settings();
    let outcome = {
        let actor = authed.actor();
        release::release(
            &settings.incidents,
            &settings.store,
            &item.id,
            &actor,
            &reason,
            None,
            &settings.relay.hostname,
        )
        .await
    };
    match outcome {
        Ok(ReleaseOutcome::Delivered) => {
            Redirect::to(&format!("/message/{}?done=released", item.id)).into_response()
        }
        Ok(ReleaseOutcome::AlreadyReleased) => {
            Redirect::to(&format!("/message/{}?done=already", item.id)).into_response()
        }
        Err(e) => authed.error(
            error_status(&e),
            &format!("The message was not released: {e}."),
        ),
    }
}

/// `POST /message/{id}/delete`.
pub async fn delete(
    State(shared): State<Arc<Shared>>,
    authed: Authed,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Response {
    let (item, reason) =
        match review_request(&shared, &authed, &id, &form, access::can_delete).await {
            Ok(v) => v,
            Err(r) => return r,
        };
    let settings = shared.settings();
    let result = {
        let actor = authed.actor();
        release::delete(
            &settings.incidents,
            &settings.store,
            &item.id,
            &actor,
            &reason,
        )
        .await
    };
    match result {
        Ok(_) => Redirect::to(&format!("/message/{}?done=deleted", item.id)).into_response(),
        Err(e) => authed.error(
            error_status(&e),
            &format!("The message was not deleted: {e}."),
        ),
    }
}
