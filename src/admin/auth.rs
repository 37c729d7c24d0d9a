//! Logging in and out, and the [`Authed`] extractor every page uses.
//!
//! The login form is protected like every other form: `GET /login` sets a
//! short-lived `hm_login` cookie and puts the same random value in a hidden
//! field; `POST /login` requires both to match (double submit), so another
//! site cannot log a browser in to an account of its choosing.

use super::html::{self, esc};
use super::security;
use super::session::{self, Session};
use crate::access::Role;
use crate::incidents::{AuditEntry, Incidents};
use crate::serve::Shared;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;

/// The login form's double-submit cookie.
const LOGIN_COOKIE: &str = "hm_login";

/// A request from a signed-in user.
pub struct Authed {
    pub session: Session,
    /// Caller's address (see [`security::remote`]).
    pub remote: String,
}

impl Authed {
    pub fn nav(&self) -> html::Nav<'_> {
        html::Nav {
            user: &self.session.user,
            role: self.session.role,
            csrf: &self.session.csrf,
        }
    }

    pub fn role(&self) -> Role {
        self.session.role
    }

    pub fn actor(&self) -> crate::release::Actor<'_> {
        crate::release::Actor {
            name: &self.session.user,
            role: self.session.role,
            remote: Some(&self.remote),
        }
    }

    /// Whether `token` (from a form) is this session's CSRF token.
    pub fn csrf_ok(&self, token: &str) -> bool {
        session::same_secret(token, &self.session.csrf)
    }

    /// An error page with this user's navigation.
    pub fn error(&self, status: StatusCode, message: &str) -> Response {
        html::error(status, Some(&self.nav()), message)
    }

    /// The 403 for a form without valid CSRF proof.
    pub fn csrf_refused(&self) -> Response {
        self.error(
            StatusCode::FORBIDDEN,
            "The form was missing its security token or it did not match your session. Reload the page and try again.",
        )
    }

    pub async fn audit(
        &self,
        db: &Incidents,
        action: &str,
        target: Option<&str>,
        reason: Option<&str>,
        detail: Option<&str>,
    ) {
        audit(
            db,
            &self.session.user,
            action,
            target,
            reason,
            Some(&self.remote),
            detail,
        )
        .await;
    }
}

/// Append an audit row; a failure is logged (the action itself already
/// happened or was refused).
pub async fn audit(
    db: &Incidents,
    actor: &str,
    action: &str,
    target: Option<&str>,
    reason: Option<&str>,
    remote: Option<&str>,
    detail: Option<&str>,
) {
    let entry = AuditEntry {
        actor,
        action,
        target,
        reason,
        remote,
        detail,
    };
    if let Err(e) = db.audit(&entry).await {
        tracing::error!(error = %e, action, "could not write the audit log");
    }
}

/// Not signed in (or the session expired): go to the login page.
pub struct LoginRequired;

impl IntoResponse for LoginRequired {
    fn into_response(self) -> Response {
        Redirect::to("/login").into_response()
    }
}

/// An internal error while checking the session.
pub fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "admin request failed");
    html::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        "Internal error; the details are in the server log.",
    )
}

impl FromRequestParts<Arc<Shared>> for Authed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let remote = security::remote(&parts.extensions, &parts.headers);
        let Some(value) = cookie(&parts.headers, session::COOKIE) else {
            return Err(LoginRequired.into_response());
        };
        let settings = shared.settings();
        match session::lookup(&settings.incidents, &value).await {
            Ok(Some(session)) => Ok(Authed { session, remote }),
            Ok(None) => Err(LoginRequired.into_response()),
            Err(e) => Err(internal(e)),
        }
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| session::cookie_value(h, name).map(str::to_string))
}

fn secure_cookies(shared: &Shared) -> bool {
    shared
        .settings()
        .config
        .admin
        .base_url
        .to_ascii_lowercase()
        .starts_with("https://")
}

fn login_page(token: &str, message: Option<&str>) -> String {
    let note = message
        .map(|m| format!(r#"<p class="error">{}</p>"#, esc(m)))
        .unwrap_or_default();
    html::page(
        "Log in",
        None,
        &format!(
            r#"{note}<form method="post" action="/login" class="login">
<input type="hidden" name="login_token" value="{}">
<label for="user">User name</label><input id="user" name="user" autocomplete="username" required maxlength="64" autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
<button type="submit">Log in</button>
</form>"#,
            esc(token)
        ),
    )
}

/// A login page response with a fresh double-submit token.
fn login_response(shared: &Shared, status: StatusCode, message: Option<&str>) -> Response {
    let token = match session::random_hex(32) {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let secure = if secure_cookies(shared) {
        "; Secure"
    } else {
        ""
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (
                header::SET_COOKIE,
                format!("{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{secure}"),
            ),
        ],
        login_page(&token, message),
    )
        .into_response()
}

/// `GET /login`.
pub async fn login_form(State(shared): State<Arc<Shared>>) -> Response {
    login_response(&shared, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    login_token: String,
}

/// `POST /login`.
pub async fn login(
    State(shared): State<Arc<Shared>>,
    parts: Parts,
    Form(form): Form<LoginForm>,
) -> Response {
    let settings = shared.settings();
    let db = &settings.incidents;
    let remote = security::remote(&parts.extensions, &parts.headers);
    let name: String = form.user.trim().chars().take(64).collect();
    let expected = cookie(&parts.headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::same_secret(&form.login_token, &expected) {
        return login_response(
            &shared,
            StatusCode::FORBIDDEN,
            Some("The login form expired or was not sent from this site. Please try again."),
        );
    }
    if let Err(e) = session::sweep(db).await {
        return internal(e);
    }
    match session::throttled(db, &remote, &name).await {
        Ok(false) => {}
        Ok(true) => {
            audit(
                db,
                &name,
                "login",
                None,
                None,
                Some(&remote),
                Some("throttled"),
            )
            .await;
            return login_response(
                &shared,
                StatusCode::TOO_MANY_REQUESTS,
                Some("Too many failed logins. Wait 15 minutes and try again."),
            );
        }
        Err(e) => return internal(e),
    }
    let user = match db.verify_login(&name, &form.password).await {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    let Some(user) = user else {
        if let Err(e) = session::failed_login(db, &remote, &name).await {
            return internal(e);
        }
        audit(
            db,
            &name,
            "login",
            None,
            None,
            Some(&remote),
            Some("failed"),
        )
        .await;
        return login_response(
            &shared,
            StatusCode::UNAUTHORIZED,
            Some("Wrong user name or password."),
        );
    };
    let (value, session) = match session::create(db, &user.name, user.role, Some(&remote)).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    audit(
        db,
        &session.user,
        "login",
        None,
        None,
        Some(&remote),
        Some("ok"),
    )
    .await;
    let home = if session.role == Role::Governor {
        "/summaries"
    } else {
        "/"
    };
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, home.to_string()),
            (
                header::SET_COOKIE,
                session::set_cookie(&value, secure_cookies(&shared)),
            ),
        ],
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`.
pub async fn logout(
    State(shared): State<Arc<Shared>>,
    authed: Authed,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if !authed.csrf_ok(&form.csrf) {
        return authed.csrf_refused();
    }
    let settings = shared.settings();
    if let Err(e) = session::end(&settings.incidents, &authed.session.key).await {
        return internal(e);
    }
    authed
        .audit(&settings.incidents, "logout", None, None, None)
        .await;
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/login".to_string()),
            (
                header::SET_COOKIE,
                session::clear_cookie(secure_cookies(&shared)),
            ),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_page_escapes_message_and_carries_token() {
        let p = login_page("abc", Some("<x>"));
        assert!(p.contains("&lt;x&gt;") && !p.contains("<x>"));
        assert!(p.contains(r#"name="login_token" value="abc""#));
        assert!(p.contains(r#"action="/login""#));
    }
}
