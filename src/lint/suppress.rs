//! Suppressions live in the stack (`lint: { ignore: [{ rule, address, reason, expires }] }`),
//! never in comments: each says which rule at which address is accepted and why, and may
//! expire. A suppressed finding is still listed, as suppressed; an expired suppression hides
//! nothing and is itself a finding (DL069).

use super::{at_stack, rules, Finding, Suppressed};
use crate::spec::{LoadedStack, SpecError};

/// `YYYY-MM-DD` as a date.
pub fn parse_date(text: &str) -> Option<time::Date> {
    let mut parts = text.trim().splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    time::Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

/// The located spec errors of the `lint:` block: a suppression needs a reason, a known rule,
/// an address of the stack (or `lint`) and, if it expires, a date.
pub fn check_spec(loaded: &LoadedStack) -> Vec<SpecError> {
    let mut errors = Vec::new();
    for (n, ig) in loaded.stack.lint.ignore.iter().enumerate() {
        let p = format!("lint.ignore.{n}");
        if ig.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            errors.push(loaded.error_at(
                &format!("{p}.reason"),
                "a suppression needs a reason: why the finding is accepted (it is shown with the suppressed finding)",
            ));
        }
        match rules::rule(&ig.rule) {
            None => errors.push(loaded.error_at(
                &format!("{p}.rule"),
                format!(
                    "`{}` is not a lint rule (DL001…; `deploy lint` lists them)",
                    ig.rule
                ),
            )),
            Some(r) if !matches!(r.scope, rules::Scope::Offline | rules::Scope::Live) => errors
                .push(loaded.error_at(
                    &format!("{p}.rule"),
                    format!("{} is never a finding here: nothing to suppress", r.id),
                )),
            Some(_) => {}
        }
        // `lint`: the stack's own lint settings; the lookups: what the `--live` rules read;
        // `config_bucket`: the config sidecar deploy adds to reloading tasks.
        let known = [
            "lint",
            "lookups.load_balancer",
            "lookups.subnets",
            "config_bucket",
        ]
        .contains(&ig.address.as_str())
            || ig
                .address
                .parse::<crate::model::Address>()
                .is_ok_and(|a| crate::spec::stack_defines(loaded, &a));
        if !known {
            errors.push(loaded.error_at(
                &format!("{p}.address"),
                format!("`{}` is not an address of this stack (e.g. task_definition.grafana), nor `lint`, `config_bucket`, `lookups.load_balancer` or `lookups.subnets`", ig.address),
            ));
        }
        if let Some(e) = &ig.expires {
            if parse_date(e).is_none() {
                errors.push(loaded.error_at(
                    &format!("{p}.expires"),
                    format!("`{e}` is not a date YYYY-MM-DD"),
                ));
            }
        }
    }
    errors
}

/// Marks the findings the stack suppresses, and adds DL069 for each expired suppression.
pub fn apply(loaded: &LoadedStack, findings: &mut Vec<Finding>, today: time::Date) {
    let expired = mark(loaded, findings, today);
    findings.extend(expired);
}

/// Marks the findings the stack suppresses (an expired suppression hides nothing), and returns
/// a DL069 finding for each expired one. For findings added to a report that `apply` already
/// ran on (the live rules): they are marked, and the expiries are not reported twice.
pub fn mark(loaded: &LoadedStack, findings: &mut [Finding], today: time::Date) -> Vec<Finding> {
    let mut expired = Vec::new();
    for (n, ig) in loaded.stack.lint.ignore.iter().enumerate() {
        let Some(reason) = ig.reason.as_deref().filter(|r| !r.trim().is_empty()) else {
            continue;
        };
        if let Some(e) = &ig.expires {
            if parse_date(e).is_some_and(|d| d < today) {
                expired.push(at_stack(
                    loaded,
                    "DL069",
                    "lint".into(),
                    &format!("lint.ignore.{n}.expires"),
                    format!("the suppression of {} at {} expired on {e}; it no longer hides its findings", ig.rule, ig.address),
                ));
                continue;
            }
        }
        for f in findings
            .iter_mut()
            .filter(|f| f.rule.id == ig.rule && f.address == ig.address)
        {
            f.suppressed = Some(Suppressed {
                reason: reason.trim().to_string(),
                expires: ig.expires.clone(),
            });
        }
    }
    expired
}
