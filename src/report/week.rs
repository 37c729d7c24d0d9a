//! ISO weeks in the school's time zone (Europe/London): `2026-W47`, `last`,
//! or the current week so far.

use jiff::ZonedDateTime;
use jiff::civil::{Date, ISOWeekDate, Weekday};

#[derive(Debug, thiserror::Error)]
pub enum WeekError {
    #[error("`{0}` is not a week: use e.g. 2026-W47 or `last`")]
    Syntax(String),
    #[error("week {0}: {1}")]
    Range(String, String),
}

/// One ISO week: Monday 00:00 to the next Monday 00:00, school time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Week {
    pub year: i16,
    pub week: i8,
    /// Unix seconds of Monday 00:00 (Europe/London).
    pub start: i64,
    /// Unix seconds of the following Monday 00:00.
    pub end: i64,
}

impl Week {
    /// The week containing `date`.
    pub fn of(date: Date) -> Result<Week, WeekError> {
        let iso = date.iso_week_date();
        Week::new(iso.year(), iso.week())
    }

    pub fn new(year: i16, week: i8) -> Result<Week, WeekError> {
        let label = format!("{year}-W{week:02}");
        let err = |e: jiff::Error| WeekError::Range(label.clone(), e.to_string());
        let monday = ISOWeekDate::new(year, week, Weekday::Monday)
            .map_err(err)?
            .date();
        let next = monday.checked_add(jiff::Span::new().days(7)).map_err(err)?;
        let tz = crate::notify::compose::london();
        let start = monday.to_zoned_datetime(tz.clone()).map_err(err)?;
        let end = next.to_zoned_datetime(tz).map_err(err)?;
        Ok(Week {
            year,
            week,
            start: start.timestamp().as_second(),
            end: end.timestamp().as_second(),
        })
    }

    /// `None`: the current week; `last`: the previous one; or `YYYY-Www`.
    pub fn parse(spec: Option<&str>, now: &ZonedDateTime) -> Result<Week, WeekError> {
        let today = now.with_time_zone(crate::notify::compose::london()).date();
        match spec.map(str::trim) {
            None | Some("this") | Some("current") => Week::of(today),
            Some("last") => Week::of(today).and_then(|w| w.previous()),
            Some(s) => {
                let (y, w) = s
                    .split_once(['-'])
                    .and_then(|(y, w)| Some((y, w.strip_prefix(['W', 'w'])?)))
                    .ok_or_else(|| WeekError::Syntax(s.to_string()))?;
                let year: i16 = y.parse().map_err(|_| WeekError::Syntax(s.to_string()))?;
                let week: i8 = w.parse().map_err(|_| WeekError::Syntax(s.to_string()))?;
                Week::new(year, week)
            }
        }
    }

    pub fn previous(&self) -> Result<Week, WeekError> {
        let monday = self.monday()?;
        let prev = monday
            .checked_sub(jiff::Span::new().days(7))
            .map_err(|e| WeekError::Range(self.label(), e.to_string()))?;
        Week::of(prev)
    }

    pub fn monday(&self) -> Result<Date, WeekError> {
        ISOWeekDate::new(self.year, self.week, Weekday::Monday)
            .map(|d| d.date())
            .map_err(|e| WeekError::Range(self.label(), e.to_string()))
    }

    /// `2026-W47`.
    pub fn label(&self) -> String {
        format!("{}-W{:02}", self.year, self.week)
    }

    /// `Mon 16 Nov – Sun 22 Nov 2026`.
    pub fn span_words(&self) -> String {
        match self.monday() {
            Ok(m) => {
                let sunday = m.checked_add(jiff::Span::new().days(6)).unwrap_or(m);
                format!(
                    "{} – {}",
                    m.strftime("%a %-d %b"),
                    sunday.strftime("%a %-d %b %Y")
                )
            }
            Err(_) => self.label(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_weeks_in_london_time() {
        let now: ZonedDateTime = "2026-11-25T10:00:00+00:00[Europe/London]".parse().unwrap();
        let w = Week::parse(Some("2026-W47"), &now).unwrap();
        assert_eq!(w.label(), "2026-W47");
        assert_eq!(w.span_words(), "Mon 16 Nov – Sun 22 Nov 2026");
        assert_eq!(w.end - w.start, 7 * 86_400);
        assert_eq!(Week::parse(None, &now).unwrap().label(), "2026-W48");
        assert_eq!(Week::parse(Some("last"), &now).unwrap().label(), "2026-W47");
        assert!(Week::parse(Some("2026-47"), &now).is_err());
        assert!(Week::parse(Some("2026-W60"), &now).is_err());
        // The week of the clock change is an hour longer.
        let oct = Week::parse(Some("2026-W43"), &now).unwrap();
        assert_eq!(oct.end - oct.start, 7 * 86_400 + 3600);
        assert_eq!(
            Week::parse(Some("2026-W01"), &now)
                .unwrap()
                .previous()
                .unwrap()
                .label(),
            "2025-W52"
        );
    }
}
