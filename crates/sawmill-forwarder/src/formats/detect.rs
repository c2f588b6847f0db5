//! Recognizing the format of an S3 object: first from its key, by the folder and file name
//! layouts AWS documents for each log delivery, then from its first bytes.

use super::{alb, nlb, strip_bom, vpcflow, Format};

/// The format the key's layout names, if it names one.
pub(super) fn from_key(key: &str) -> Option<Format> {
    let file_name = key.rsplit('/').next().unwrap_or(key);
    if let Some(format) = from_file_name(file_name) {
        return Some(format);
    }
    // Kinesis Data Firehose streams that receive AWS WAF logs must be named aws-waf-logs-*,
    // and Firehose puts the stream name in the object names it writes.
    if key.contains("aws-waf-logs-") {
        return Some(Format::Waf);
    }
    // AWSLogs/<account>/<service>/..., AWSLogs/<organization>/<account>/<service>/... or,
    // with Hive-compatible prefixes, AWSLogs/aws-account-id=<account>/aws-service=<service>/...
    let mut segments = key.split('/');
    if !segments.any(|segment| segment == "AWSLogs") {
        return None;
    }
    segments.take(3).find_map(|segment| match segment {
        "CloudTrail" | "CloudTrail-Insight" => Some(Format::CloudTrail),
        "WAFLogs" => Some(Format::Waf),
        _ if segment == "vpcflowlogs"
            || segment.ends_with("=vpcflowlogs")
            || segment.ends_with("%3Dvpcflowlogs") =>
        {
            Some(Format::VpcFlow)
        }
        _ => None,
    })
}

/// The format of a log file named as AWS names them.
fn from_file_name(name: &str) -> Option<Format> {
    let parts: Vec<&str> = name.split('_').collect();
    // <account>_elasticloadbalancing_<region>_<load-balancer-id>_<end-time>_<ip>_<random>.log.gz,
    // the load balancer id starting with its type: app. or net. (a classic load balancer
    // has none, and its entries are another format). Connection logs are conn_log.<...>.
    if let Some(at) = parts.iter().position(|&p| p == "elasticloadbalancing") {
        if name.starts_with("conn_log") {
            return None;
        }
        let load_balancer = parts.get(at + 2).copied().unwrap_or("");
        return if load_balancer.starts_with("app.") {
            Some(Format::Alb)
        } else if load_balancer.starts_with("net.") {
            Some(Format::Nlb)
        } else {
            None
        };
    }
    // <account>_<service>_<region>_...
    match parts.get(1).copied() {
        Some("vpcflowlogs") => return Some(Format::VpcFlow),
        Some("CloudTrail" | "CloudTrail-Insight") => return Some(Format::CloudTrail),
        Some("waflogs") => return Some(Format::Waf),
        _ => {}
    }
    is_cloudfront_file_name(name).then_some(Format::CloudFront)
}

/// `<distribution-id>.YYYY-MM-DD-HH.<unique-id>[.gz]`, the distribution id upper-case
/// letters and digits.
fn is_cloudfront_file_name(name: &str) -> bool {
    let mut parts = name.split('.');
    let (Some(distribution), Some(hour), Some(unique)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let hour_parts: Vec<&str> = hour.split('-').collect();
    distribution.len() >= 6
        && distribution
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && hour_parts.len() == 4
        && digits(hour_parts[0], 4)
        && hour_parts[1..].iter().all(|p| digits(p, 2))
        && !unique.is_empty()
        && unique.bytes().all(|b| b.is_ascii_alphanumeric())
        && (rest.is_empty() || rest == ["gz"])
}

/// The format the first bytes of an object look like; lines when nothing fits.
pub(super) fn from_content(head: &[u8]) -> Format {
    let text = String::from_utf8_lossy(strip_bom(head));
    let text = text.trim_start();
    if text.starts_with("#Version:") || text.starts_with("#Fields:") {
        return Format::CloudFront;
    }
    if is_cloudtrail_start(text) {
        return Format::CloudTrail;
    }
    let first_line = text.lines().next().unwrap_or("");
    if first_line.starts_with('{') {
        return if first_line.contains("\"webaclId\"") {
            Format::Waf
        } else {
            Format::Ndjson
        };
    }
    let words: Vec<&str> = first_line.split_ascii_whitespace().collect();
    // A header of fewer than three fields could as well be a line of text.
    if (words.len() >= 3 && vpcflow::is_header(&words)) || vpcflow::is_default_record(&words) {
        Format::VpcFlow
    } else if alb::looks_like(&words) {
        Format::Alb
    } else if nlb::looks_like(&words) {
        Format::Nlb
    } else {
        Format::Lines
    }
}

/// Whether the text starts like `{"Records": [`.
fn is_cloudtrail_start(text: &str) -> bool {
    text.strip_prefix('{')
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix("\"Records\""))
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|rest| rest.trim_start().starts_with('['))
}

#[cfg(test)]
mod tests {
    use super::super::Format;

    fn detect_key(key: &str) -> Format {
        Format::detect(key, b"")
    }

    #[test]
    fn from_keys() {
        let cases = [
            // The examples of AWS's documentation for each delivery.
            ("my-bucket/prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20140215T2340Z_172.160.001.192_20sg8hgm.log.gz", Format::Alb),
            ("AWSLogs/123456789012/elasticloadbalancing/us-east-2/2018/12/20/123456789012_elasticloadbalancing_us-east-2_net.my-network-loadbalancer.c6e77e28c25b2234_20181220T2340Z_1a2b3c4d.log.gz", Format::Nlb),
            ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz", Format::VpcFlow),
            ("logs/AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2026/month=11/day=27/flows.log.gz", Format::VpcFlow),
            ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/27/flows.log.gz", Format::VpcFlow),
            ("AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/01/111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz", Format::CloudTrail),
            ("AWSLogs/o-exampleorgid/111122223333/CloudTrail/us-east-2/2015/08/01/trail.json.gz", Format::CloudTrail),
            ("AWSLogs/111122223333/CloudTrail-Insight/us-east-2/2015/08/01/111122223333_CloudTrail-Insight_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz", Format::CloudTrail),
            ("example-prefix/EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz", Format::CloudFront),
            ("EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9", Format::CloudFront),
            ("aws-waf-logs-bucket/AWSLogs/111122223333/WAFLogs/us-east-1/TestWebACL/2021/10/28/19/50/111122223333_waflogs_us-east-1_TestWebACL_20211028T1950Z_e0ca43b5.log.gz", Format::Waf),
            ("AWSLogs/111122223333/WAFLogs/cloudfront/TestWebACL/2021/10/28/19/50/events.log.gz", Format::Waf),
            ("firehose/2026/11/27/08/aws-waf-logs-prod-1-2026-11-27-08-00-00-0a1b2c3d.gz", Format::Waf),
        ];
        for (key, expected) in cases {
            assert_eq!(detect_key(key), expected, "{key}");
        }
    }

    #[test]
    fn keys_that_say_nothing_fall_back_to_content() {
        for key in [
            "",
            "logs/app/2026-11-27.log",
            // A classic load balancer: another format.
            "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2014/02/15/123456789012_elasticloadbalancing_us-east-2_my-loadbalancer_20140215T2340Z_172.160.001.192_20sg8hgm.log",
            // ALB connection logs: another format.
            "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/01/01/conn_log.123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20240101T0000Z_172.160.001.192_20sg8hgm.log.gz",
            // CloudTrail digests are not trails.
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/01/111122223333_CloudTrail-Digest_us-east-2_trail_us-east-2_20150801T0210Z.json.gz",
            "AWSLogs/123456789012/ELBAccessLogTestFile",
            // Not a distribution id.
            "prefix/emlarxs9example.2019-11-14-20.RT4KCN4SGK9.gz",
            "prefix/EMLARXS9EXAMPLE.2019-11-14.RT4KCN4SGK9.gz",
            // A service folder outside AWSLogs says nothing.
            "backup/CloudTrail/file.json",
        ] {
            assert_eq!(detect_key(key), Format::Lines, "{key}");
        }
        // With content, the content decides.
        assert_eq!(
            Format::detect(
                "AWSLogs/111122223333/CloudTrail-Digest/x.json.gz",
                br#"{"awsAccountId":"111122223333","digestStartTime":"2015-08-01T01:00:00Z"}"#
            ),
            Format::Ndjson
        );
    }

    #[test]
    fn key_wins_over_content() {
        assert_eq!(
            Format::detect(
                "AWSLogs/123456789012/vpcflowlogs/us-east-1/x.log.gz",
                b"#Version: 1.0\n"
            ),
            Format::VpcFlow
        );
    }

    #[test]
    fn from_content() {
        let cases: [(&[u8], Format); 17] = [
            (b"#Version: 1.0\n#Fields: date time x-edge-location\n", Format::CloudFront),
            (b"\xEF\xBB\xBF#Fields: date time\n", Format::CloudFront),
            (b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n2 123456789010 eni-1235b8ca123456789", Format::VpcFlow),
            (b"instance-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr\r\n", Format::VpcFlow),
            (b"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n", Format::VpcFlow),
            (br#"{"Records":[{"eventVersion":"1.0","#, Format::CloudTrail),
            (b"{\n    \"Records\" : [\n", Format::CloudTrail),
            (br#"{"eventVersion":"1.08","eventTime":"2026-11-27T08:00:00Z"}"#, Format::Ndjson),
            (b"  {\"msg\":\"hello\"}\n{\"msg\":\"again\"}\n", Format::Ndjson),
            (br#"{"timestamp":1576280412771,"formatVersion":1,"webaclId":"arn:aws:wafv2:ap-southeast-2:111122223333:regional/webacl/STMTest/1EXAMPLE","#, Format::Waf),
            (br#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.exa"#, Format::Alb),
            (b"tls 2.0 2018-12-20T02:59:40 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd 72.21.218.154:51341", Format::Nlb),
            (b"2026-11-27 08:00:00 INFO started\n", Format::Lines),
            (b"http is a protocol\n", Format::Lines),
            (b"start end\n", Format::Lines),
            (b"", Format::Lines),
            (b"\xFF\xFE\x00garbage", Format::Lines),
        ];
        for (head, expected) in cases {
            assert_eq!(
                Format::detect("uploads/object", head),
                expected,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }
}
