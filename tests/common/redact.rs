// Redaction for snapshot tests of plans (text and markdown): what moto makes up differs on
// every run, so snapshots hold numbered placeholders for it and only what the tool decides.

/// Replaces ids that moto makes up (sg-…, subnet-…, vpc-…, fs-…, fsap-…, Cloud Map and ELBv2
/// ids), content hashes and delivered files' digests with numbered placeholders, in order of first appearance: the
/// same id is the same `[idN]` wherever it appears and two different ids never share one, so
/// a rule pointing at the wrong group or a revision that kept its hash still shows.
pub fn redact(text: &str) -> String {
    let mut seen = Numbering::default();
    let mut out = String::new();
    let mut rest = text;
    'scan: while !rest.is_empty() {
        // EC2 and EFS ids (hex), Cloud Map ids (lower-case letters and digits).
        let hex = |c: char| c.is_ascii_hexdigit();
        let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let ids: [(&str, &dyn Fn(char) -> bool); 7] = [
            ("sg-", &hex),
            ("subnet-", &hex),
            ("vpc-", &hex),
            ("fsap-", &hex),
            ("fs-", &hex),
            ("[ns-", &alnum),
            ("/srv-", &alnum),
        ];
        for (prefix, is_id) in ids {
            if let Some(tail) = rest.strip_prefix(prefix) {
                let n = tail.chars().take_while(|c| is_id(*c)).count();
                if n >= 8 {
                    out.push_str(prefix);
                    out.push_str(&seen.id(&tail[..n]));
                    rest = &tail[n..];
                    continue 'scan;
                }
            }
        }
        // ELBv2 ARNs: the load balancer's, target group's, listener's and rule's ids.
        if let Some(tail) = rest.strip_prefix('/') {
            let n = tail.chars().take_while(|c| c.is_ascii_hexdigit()).count();
            if n == 16 {
                out.push('/');
                out.push_str(&seen.id(&tail[..n]));
                rest = &tail[n..];
                continue;
            }
        }
        // Secrets Manager appends six random characters to a secret's name in its ARN.
        if let Some(tail) = rest.strip_prefix(":secret:") {
            let n = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c))
                .count();
            let token = &tail[..n];
            out.push_str(":secret:");
            match token.len().checked_sub(7).map(|i| token.split_at(i)) {
                Some((name, suffix)) if suffix.starts_with('-') => {
                    out.push_str(&format!("{name}-{}", seen.id(suffix)));
                }
                _ => out.push_str(token),
            }
            rest = &tail[n..];
            continue;
        }
        // A delivered file's digest: some files name moto's ids (a dashboard names the ALB).
        if let Some(tail) = rest.strip_prefix("sha256 ") {
            let n = tail.chars().take_while(|c| c.is_ascii_hexdigit()).count();
            if n == 12 {
                out.push_str("sha256 ");
                out.push_str(&seen.sha(&tail[..n]));
                rest = &tail[n..];
                continue;
            }
        }
        if let Some(tail) = rest.strip_prefix('@') {
            let n = tail.chars().take_while(|c| c.is_ascii_hexdigit()).count();
            if n == 32 {
                out.push('@');
                out.push_str(&seen.hash(&tail[..n]));
                rest = &tail[n..];
                continue;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Placeholders numbered in order of first appearance: one series for ids, one for content
/// hashes, one for file digests.
#[derive(Default)]
struct Numbering {
    ids: Vec<String>,
    hashes: Vec<String>,
    shas: Vec<String>,
}

impl Numbering {
    fn id(&mut self, id: &str) -> String {
        format!("[id{}]", Self::number(&mut self.ids, id))
    }

    fn hash(&mut self, hash: &str) -> String {
        format!("[hash{}]", Self::number(&mut self.hashes, hash))
    }

    fn sha(&mut self, sha: &str) -> String {
        format!("[sha{}]", Self::number(&mut self.shas, sha))
    }

    fn number(seen: &mut Vec<String>, value: &str) -> usize {
        match seen.iter().position(|s| s == value) {
            Some(i) => i + 1,
            None => {
                seen.push(value.to_string());
                seen.len()
            }
        }
    }
}
