//! The HTTPS listener's certificates and the names they cover (ELBv2
//! DescribeListenerCertificates, ACM DescribeCertificate): an environment other than the
//! stack's own serves Grafana at its own host, which browsers accept only when one of the
//! listener's certificates names it. The plan says so when none does.

use super::{err, Aws, AwsError};
use std::collections::BTreeSet;

/// Every DNS name the certificates of `listener` cover (each certificate's domain and its
/// subject alternative names). Calls: DescribeListenerCertificates (pages), then one
/// DescribeCertificate per certificate, at once.
pub async fn listener_names(aws: &Aws, listener: &str) -> Result<BTreeSet<String>, AwsError> {
    let mut arns = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = aws
            .elbv2
            .describe_listener_certificates()
            .listener_arn(listener)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(err("elasticloadbalancing", "DescribeListenerCertificates"))?;
        arns.extend(
            out.certificates()
                .iter()
                .filter_map(|c| c.certificate_arn().map(str::to_string)),
        );
        match out.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    arns.sort();
    arns.dedup();
    let described = futures::future::try_join_all(
        arns.iter()
            .map(|arn| aws.acm.describe_certificate().certificate_arn(arn).send()),
    )
    .await
    .map_err(err("acm", "DescribeCertificate"))?;
    Ok(described
        .iter()
        .filter_map(|d| d.certificate())
        .flat_map(|c| {
            c.domain_name()
                .into_iter()
                .chain(c.subject_alternative_names().iter().map(String::as_str))
                .map(str::to_ascii_lowercase)
        })
        .collect())
}

/// One warning per host of `hosts` that no certificate of `listener` covers (none without
/// hosts: no call then).
pub async fn host_warnings(
    aws: &Aws,
    listener: &str,
    hosts: &[String],
) -> Result<Vec<String>, AwsError> {
    if hosts.is_empty() {
        return Ok(vec![]);
    }
    let names = listener_names(aws, listener).await?;
    let shown: Vec<&str> = names.iter().map(String::as_str).collect();
    Ok(uncovered(hosts, &names)
        .into_iter()
        .map(|h| {
            format!(
                "host {h}: no certificate of the HTTPS listener covers it (they cover: {}), so browsers will refuse https://{h}/; add one for it (or a wildcard for its domain) to the listener, or give this environment a covered host under `environments:` (`hosts:`)",
                if shown.is_empty() { "nothing".to_string() } else { shown.join(", ") }
            )
        })
        .collect())
}

/// Whether a certificate for `name` (`grafana.example.com`, or a wildcard `*.example.com`
/// for exactly one label) is valid for `host`.
pub fn covers(name: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    match name.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => name == host,
    }
}

/// The hosts of `hosts` no name of `names` covers.
pub fn uncovered<'a>(hosts: &'a [String], names: &BTreeSet<String>) -> Vec<&'a str> {
    hosts
        .iter()
        .filter(|h| !names.iter().any(|n| covers(n, h)))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_covers_one_label_only() {
        assert!(covers("grafana.example.com", "grafana.example.com"));
        assert!(covers("grafana.example.com", "Grafana.Example.com"));
        assert!(!covers("grafana.example.com", "grafana-pr-1.example.com"));
        assert!(covers("*.example.com", "grafana-pr-1.example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        let names: BTreeSet<String> = ["grafana.example.com".to_string()].into();
        let hosts = vec![
            "grafana.example.com".to_string(),
            "g-pr.example.com".to_string(),
        ];
        assert_eq!(uncovered(&hosts, &names), vec!["g-pr.example.com"]);
    }
}
