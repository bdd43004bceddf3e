//! The plan as a pull request comment (`--format markdown`): the summary line, the warnings
//! that matter first (restarts that lose data, deletions of data, drift, ownership conflicts),
//! a table of changes and one collapsible block per resource. GitHub refuses a comment body
//! over 65,536 characters, so past that whole blocks are cut and the comment says how many,
//! and which command prints them.

use super::{cause_text, change_body, head_line, Style};
use crate::model::Kind;
use crate::plan::{Action, Cause, Change, Plan};
use std::fmt::Write;

/// The most characters GitHub accepts in a comment body.
pub const COMMENT_LIMIT: usize = 65_536;

/// Characters as GitHub counts them (not bytes).
fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Text safe inside markdown and HTML: no tags, no table cell breaks.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
}

/// The plan as a comment of at most [`COMMENT_LIMIT`] characters. `everything` is the command
/// that prints the whole plan, named when something had to be cut.
pub fn plan_markdown(plan: &Plan, style: Style, everything: &str) -> String {
    plan_markdown_within(plan, style, everything, COMMENT_LIMIT)
}

/// `<!-- deploy plan: STACK (ENVIRONMENT) -->`: the first line of every plan comment.
fn comment_marker(plan: &Plan) -> String {
    let safe = |s: &str| s.replace("--", "-");
    format!(
        "<!-- deploy plan: {} ({}) -->",
        safe(&plan.stack),
        safe(&plan.environment)
    )
}

/// A part of the comment that may be left out when space runs out, in the order parts are
/// kept: warnings, then table rows, then resource blocks.
struct Part {
    text: String,
    /// Headings and table headers: kept whenever anything after them is.
    frame: bool,
}

fn plan_markdown_within(plan: &Plan, style: Style, everything: &str, limit: usize) -> String {
    let style = Style {
        color: false,
        ..style
    };
    let changes: Vec<&Change> = plan.changes.iter().filter(|c| !c.is_noop()).collect();
    // The first line marks the comment as this stack's plan (invisible on GitHub), so a CI
    // job can find its own comment and edit it instead of adding one per push.
    let mut head = format!(
        "{}\n### deploy plan: stack `{}` ({}), account {}, region {}\n\n",
        comment_marker(plan),
        escape(&plan.stack),
        escape(&plan.environment),
        plan.account_id,
        plan.region
    );
    let s = plan.summary();
    if changes.is_empty() && plan.conflicts.is_empty() {
        head.push_str("**No changes.**\n");
    } else if changes.is_empty() {
        head.push_str("**Nothing can change until the conflicts below are resolved.**\n");
    } else {
        let _ = writeln!(
            head,
            "**Plan: {} to add, {} to change, {} to replace, {} to destroy.**",
            s.add, s.change, s.replace, s.destroy
        );
    }
    let warnings = warning_parts(plan, &changes);
    let table = table_parts(&changes);
    let blocks: Vec<String> = changes.iter().map(|c| block(c, style)).collect();

    // Reserve room for the note at its longest (every count at its largest).
    let note = |w: usize, r: usize, b: usize| cut_note(w, r, b, blocks.len(), everything);
    let reserve = chars(&note(warnings.len(), table.len(), blocks.len())) + 1;
    let mut room = limit.saturating_sub(chars(&head) + reserve);
    let mut fit = |parts: &[Part]| -> (String, usize) {
        let (mut kept, mut cut, mut pending) = (String::new(), 0, String::new());
        for p in parts {
            if p.frame {
                pending.push_str(&p.text);
                continue;
            }
            let need = chars(&pending) + chars(&p.text);
            if need <= room {
                room -= need;
                kept.push_str(&std::mem::take(&mut pending));
                kept.push_str(&p.text);
            } else {
                cut += 1;
            }
        }
        (kept, cut)
    };
    let (warnings_kept, warnings_cut) = fit(&warnings);
    let (table_kept, rows_cut) = fit(&table);
    let block_parts: Vec<Part> = blocks
        .iter()
        .map(|b| Part {
            text: b.clone(),
            frame: false,
        })
        .collect();
    let (blocks_kept, blocks_cut) = fit(&block_parts);

    let mut out = head;
    if warnings_cut + rows_cut + blocks_cut > 0 {
        out.push('\n');
        out.push_str(&note(warnings_cut, rows_cut, blocks_cut));
    }
    out.push_str(&warnings_kept);
    out.push_str(&table_kept);
    out.push_str(&blocks_kept);
    out
}

/// Says what was cut and which command prints it: `> 3 of 24 resource blocks were cut …`.
fn cut_note(warnings: usize, rows: usize, blocks: usize, of_blocks: usize, cmd: &str) -> String {
    let mut what = Vec::new();
    if warnings > 0 {
        what.push(format!("{warnings} warnings"));
    }
    if rows > 0 {
        what.push(format!("{rows} rows of the table of changes"));
    }
    if blocks > 0 {
        what.push(format!("{blocks} of {of_blocks} resource blocks"));
    }
    format!(
        "> **Cut to fit a comment** ({COMMENT_LIMIT} characters at most): {} left out. \
         `{cmd}` prints the whole plan.\n",
        what.join(", ")
    )
}

/// The warnings a reviewer must see first, by what they risk: ownership conflicts, restarts
/// that lose data, deletions of data, drift, then the rest.
fn warning_parts(plan: &Plan, changes: &[&Change]) -> Vec<Part> {
    let heading = |text: &str| Part {
        text: format!("\n#### {text}\n\n"),
        frame: true,
    };
    let item = |text: String| Part {
        text: format!("- {text}\n"),
        frame: false,
    };
    let mut parts = Vec::new();
    let mut section = |title: &str, items: Vec<String>| {
        if !items.is_empty() {
            parts.push(heading(title));
            parts.extend(items.into_iter().map(item));
        }
    };
    section(
        "Ownership conflicts: nothing will be changed until they are resolved",
        plan.conflicts
            .iter()
            .map(|c| format!("`{}`: {}", c.address, escape(&c.message)))
            .collect(),
    );
    // A service's warnings are about its restart; a data-bearing resource's about its deletion.
    let restarts = |c: &Change| c.address.kind == Kind::EcsService;
    let deletes_data = |c: &Change| !restarts(c) && c.address.kind.holds_data();
    let change_warnings = |which: &dyn Fn(&Change) -> bool| -> Vec<String> {
        changes
            .iter()
            .filter(|c| which(c))
            .flat_map(|c| c.warnings.iter().map(|w| escape(w)))
            .collect()
    };
    section("Restarts that lose data", change_warnings(&restarts));
    section("Deletions of data", change_warnings(&deletes_data));
    section(
        "Changed outside deploy (drift; this plan repairs it)",
        changes
            .iter()
            .filter(|c| matches!(c.cause, Some(Cause::Drift | Cause::DriftAndStackEdit)))
            .map(|c| {
                let names: Vec<&str> = c.attrs.iter().map(|a| a.name.as_str()).collect();
                format!("`{}`: {}", c.address, escape(&names.join(", ")))
            })
            .collect(),
    );
    section(
        "Kept, because they hold data (`--delete-data`, or `disposable: true` in the stack, deletes them)",
        plan.kept
            .iter()
            .map(|k| format!("`{}` ({}): {}", k.address, escape(&k.id), escape(&k.data)))
            .collect(),
    );
    let shown: Vec<&String> = changes
        .iter()
        .filter(|c| restarts(c) || deletes_data(c))
        .flat_map(|c| &c.warnings)
        .collect();
    let mut others: Vec<String> = Vec::new();
    for w in changes
        .iter()
        .flat_map(|c| &c.warnings)
        .chain(&plan.warnings)
    {
        let w_shown = escape(w);
        if !shown.contains(&w) && !others.contains(&w_shown) {
            others.push(w_shown);
        }
    }
    section("Other warnings", others);
    parts
}

/// What a change does, in words.
fn action_words(c: &Change) -> &'static str {
    match c.action {
        Action::Create if c.new_revision && c.observed.is_some() => "new revision",
        Action::Create if c.new_revision => "create (first revision)",
        Action::Create => "create",
        Action::Update => "update in place",
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::NoOp => "no change",
    }
}

/// One row per change: symbol, address, action, why, and the attributes it changes (those
/// that force a replacement marked).
fn table_parts(changes: &[&Change]) -> Vec<Part> {
    if changes.is_empty() {
        return Vec::new();
    }
    let mut parts = vec![Part {
        text: "\n| | resource | action | why | attributes changed |\n|---|---|---|---|---|\n"
            .to_string(),
        frame: true,
    }];
    for c in changes {
        let why = match c.cause {
            Some(Cause::New) | None => "new".to_string(),
            Some(Cause::Destroy) => "destroy".to_string(),
            cause => cause_text(cause)
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .to_string(),
        };
        let attrs = if matches!(c.action, Action::Update | Action::Replace)
            || (c.action == Action::Create && c.observed.is_some())
        {
            c.attrs
                .iter()
                .map(|a| {
                    let forces = if a.forces_replacement {
                        " (forces replacement)"
                    } else {
                        ""
                    };
                    format!("`{}`{forces}", escape(&a.name))
                })
                .collect::<Vec<_>>()
                .join(", ")
        } else if c.action == Action::Create {
            "all (new)".to_string()
        } else {
            "none (deleted)".to_string()
        };
        parts.push(Part {
            text: format!(
                "| `{}` | `{}` | {} | {} | {attrs} |\n",
                c.action.symbol(),
                c.address,
                action_words(c),
                escape(&why)
            ),
            frame: false,
        });
    }
    parts
}

/// One resource as a collapsible block: its head line as the summary, what it changes (as the
/// text plan shows it) inside.
fn block(c: &Change, style: Style) -> String {
    let summary = head_line(c, style).trim().to_string();
    let body = change_body(c, style);
    let body = if body.is_empty() {
        match c.action {
            Action::Delete => "(deleted)\n".to_string(),
            _ => "(no attributes)\n".to_string(),
        }
    } else {
        body
    };
    let body = marks_first(&body);
    // A fence longer than any run of backticks inside, so the block cannot end early.
    let longest = body.split(|ch| ch != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!(
        "\n<details><summary><code>{}</code></summary>\n\n{fence}diff\n{body}{fence}\n\n</details>\n",
        escape(&summary)
    )
}

/// Lines that start with a diff mark after their indentation get it in the first column
/// (GitHub colours a `diff` block's lines by their first character only): a `---`/`+++`
/// header or `@@` hunk line loses its indentation, a `+`/`-` line moves its mark before the
/// indentation, so the text after it stays in its column.
fn marks_first(body: &str) -> String {
    body.lines()
        .map(|line| {
            let text = line.trim_start_matches(' ');
            let spaces = line.len() - text.len();
            if spaces == 0 {
                format!("{line}\n")
            } else if ["---", "+++", "@@"].iter().any(|h| text.starts_with(h)) {
                format!("{text}\n")
            } else if text.starts_with(['+', '-']) {
                format!("{}{:spaces$}{}\n", &text[..1], "", &text[1..])
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;
    use serde_json::Value;

    fn change(i: usize, action: Action, attr_len: usize) -> Change {
        super::super::edit_of_one_attribute(
            Address::new(Kind::LogGroup, format!("group_{i:04}")),
            action,
            "retention_days",
            Value::from(30),
            Value::String("x".repeat(attr_len)),
        )
    }

    fn plan(changes: Vec<Change>) -> Plan {
        Plan {
            stack: "monitoring".into(),
            environment: "production".into(),
            account_id: "123456789012".into(),
            region: "us-west-2".into(),
            destroy: false,
            changes,
            conflicts: vec![],
            warnings: vec!["targeting: only log_group.group_0000 was checked".into()],
            steps: vec![],
            kept: vec![],
            deregister_revisions: vec![],
            reload_services: vec![],
        }
    }

    #[test]
    fn a_plan_that_fits_is_whole() {
        let p = plan(vec![
            change(0, Action::Update, 10),
            change(1, Action::Update, 10),
        ]);
        let md = plan_markdown(&p, Style::default(), "deploy show plan.json");
        assert!(
            md.contains("**Plan: 0 to add, 2 to change, 0 to replace, 0 to destroy.**"),
            "{md}"
        );
        assert_eq!(md.matches("<details>").count(), 2, "{md}");
        assert_eq!(md.matches("| `~` | `log_group.group_").count(), 2, "{md}");
        assert!(
            md.contains("#### Other warnings\n\n- targeting: only"),
            "{md}"
        );
        assert!(!md.contains("Cut to fit"), "{md}");
        assert!(
            md.starts_with("<!-- deploy plan: monitoring (production) -->\n### "),
            "{md}"
        );
    }

    #[test]
    fn a_plan_too_big_for_a_comment_loses_whole_blocks_and_says_so() {
        // 300 blocks of about 1,000 characters each: about 300,000 characters in full.
        let p = plan((0..300).map(|i| change(i, Action::Update, 1_000)).collect());
        let md = plan_markdown(&p, Style::default(), "deploy show plan.json");
        assert!(chars(&md) <= COMMENT_LIMIT, "{} characters", chars(&md));
        let kept = md.matches("<details>").count();
        assert_eq!(kept, md.matches("</details>").count(), "whole blocks only");
        assert!((20..300).contains(&kept), "{kept} blocks kept");
        let one_block = chars(&block(&p.changes[0], Style::default()));
        assert!(
            chars(&md) + one_block > COMMENT_LIMIT,
            "no room was left for another block: {} characters",
            chars(&md)
        );
        assert!(
            md.contains(&format!(
                "{} of 300 resource blocks left out. `deploy show plan.json` prints the whole plan.",
                300 - kept
            )),
            "{}",
            &md[..600]
        );
        // The table still names every change, and the warnings come first.
        assert_eq!(md.matches("| `~` | `log_group.group_").count(), 300);
        assert!(md.find("targeting:").unwrap() < md.find("| resource |").unwrap());
        // Every kept block is complete: its value is all there.
        let block_of = |i: usize| {
            md.find(&format!("<code>~ log_group.group_{i:04}"))
                .is_some()
        };
        assert!(block_of(0));
        assert!(md.matches(&"x".repeat(1_000)).count() == kept);
    }

    #[test]
    fn when_even_the_table_is_too_long_rows_are_cut_and_counted() {
        let p = plan((0..3_000).map(|i| change(i, Action::Update, 10)).collect());
        let md = plan_markdown_within(&p, Style::default(), "deploy show p", 20_000);
        assert!(chars(&md) <= 20_000, "{}", chars(&md));
        assert!(
            md.contains("rows of the table of changes"),
            "{}",
            &md[..600]
        );
        assert!(
            md.contains("3000 of 3000 resource blocks"),
            "{}",
            &md[..600]
        );
        assert!(
            md.contains("**Plan: 0 to add, 3000 to change"),
            "{}",
            &md[..600]
        );
    }

    #[test]
    fn diff_marks_move_to_the_first_column_keeping_columns() {
        assert_eq!(
            marks_first(
                "~ containers:\n  --- a (live)\n  @@ -1 +1 @@\n     same\n  -    old\n  +    new\n"
            ),
            "~ containers:\n--- a (live)\n@@ -1 +1 @@\n     same\n-      old\n+      new\n"
        );
    }

    #[test]
    fn html_and_fences_inside_values_cannot_break_the_comment() {
        let mut c = change(0, Action::Update, 1);
        c.attrs[0].after = Some(Value::String("```</details><b>".into()));
        c.warnings = vec!["restarts <b>x</b> | y".into()];
        let md = plan_markdown(&plan(vec![c]), Style::default(), "deploy show p");
        assert!(md.contains("````diff\n"), "{md}");
        assert_eq!(
            md.matches("</details>").count(),
            2,
            "one real, one inside the fence: {md}"
        );
        assert!(md.contains("- restarts &lt;b&gt;x&lt;/b&gt; \\| y"), "{md}");
    }
}
