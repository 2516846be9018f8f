//! The template model and its rules, on the repository's own templates and on small variants
//! that each break one rule.

use super::*;

const REPO_TEMPLATE: &str = include_str!("../../../template.yaml");
const REPO_FIFO_TEMPLATE: &str = include_str!("../../../template-fifo.yaml");

/// A template that keeps every rule; each test breaks one.
const GOOD: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 30
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            BatchSize: 10
            MaximumBatchingWindowInSeconds: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 5
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 185
      SqsManagedSseEnabled: true
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt Dlq.Arn
        maxReceiveCount: 5
  Dlq:
    Type: AWS::SQS::Queue
    Properties:
      KmsMasterKeyId: alias/aws/sqs
"#;

fn rules(text: &str) -> Vec<&'static str> {
    Template::parse(text).unwrap().check().into_iter().map(|f| f.rule).collect()
}

#[test]
fn the_repository_template_keeps_every_rule() {
    assert_eq!(Template::parse(REPO_TEMPLATE).unwrap().check(), []);
}

#[test]
fn the_fifo_variant_keeps_every_rule_and_is_fifo_end_to_end() {
    let template = Template::parse(REPO_FIFO_TEMPLATE).unwrap();
    assert_eq!(template.check(), []);
    let event = &template.function(None).unwrap().sqs_events[0];
    assert_eq!((event.batch_size, event.batching_window), (10, Duration::ZERO));
    let queue = &template.queues["Queue"];
    assert!(queue.fifo && template.queues["DeadLetterQueue"].fifo);
    let settings: Vec<(&str, &str)> =
        queue.fifo_settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        settings,
        [
            ("ContentBasedDeduplication", "true"),
            ("DeduplicationScope", "messageGroup"),
            ("FifoThroughputLimit", "perMessageGroupId")
        ]
    );
    assert_eq!(queue.visibility_timeout, Duration::from_secs(180));
}

#[test]
fn a_dead_letter_queue_of_the_other_type_is_caught() {
    let fifo_queue = GOOD
        .replace("MaximumBatchingWindowInSeconds: 5", "MaximumBatchingWindowInSeconds: 0")
        .replace("VisibilityTimeout: 185", "VisibilityTimeout: 185\n      FifoQueue: true");
    let both = fifo_queue
        .replace("KmsMasterKeyId: alias/aws/sqs", "KmsMasterKeyId: alias/aws/sqs\n      FifoQueue: true");
    assert_eq!(rules(&both), Vec::<&str>::new(), "a FIFO queue with a FIFO DLQ is fine");
    assert_eq!(rules(&fifo_queue), ["dead-letter-queue-type"]);
    let fifo_dlq =
        GOOD.replace("KmsMasterKeyId: alias/aws/sqs", "KmsMasterKeyId: alias/aws/sqs\n      FifoQueue: true");
    assert_eq!(rules(&fifo_dlq), ["dead-letter-queue-type"]);
}

#[test]
fn the_repository_template_is_read_with_its_tags() {
    let template = Template::parse(REPO_TEMPLATE).unwrap();
    let function = template.function(None).unwrap();
    assert_eq!(function.logical_id, "HandlerFunction");
    assert_eq!(function.timeout, Duration::from_secs(30));
    assert_eq!(function.environment.get("HANDLER_CONCURRENCY").map(String::as_str), Some("10"));
    let event = &function.sqs_events[0];
    assert_eq!(event.queue.as_deref(), Some("Queue"));
    assert_eq!((event.batch_size, event.max_concurrency), (10, Some(5)));
    assert!(event.report_batch_item_failures);
    let queue = &template.queues["Queue"];
    assert_eq!(queue.redrive, Some((Some("DeadLetterQueue".into()), 5)));
}

#[test]
fn a_template_that_keeps_the_rules_has_no_findings() {
    assert_eq!(rules(GOOD), Vec::<&str>::new());
}

#[test]
fn a_visibility_timeout_below_six_times_the_timeout_plus_window_is_caught() {
    // 6 x 30 + 5 = 185: 184 is one second short.
    assert_eq!(
        rules(&GOOD.replace("VisibilityTimeout: 185", "VisibilityTimeout: 184")),
        ["visibility-timeout"]
    );
}

#[test]
fn missing_report_batch_item_failures_is_caught() {
    assert_eq!(
        rules(&GOOD.replace("FunctionResponseTypes: [ReportBatchItemFailures]", "FunctionResponseTypes: []")),
        ["report-batch-item-failures"]
    );
}

/// [`GOOD`] with a FIFO queue and a FIFO dead-letter queue (the batching window still set).
fn fifo_good() -> String {
    GOOD.replace("VisibilityTimeout: 185", "VisibilityTimeout: 185\n      FifoQueue: true")
        .replace("KmsMasterKeyId: alias/aws/sqs", "KmsMasterKeyId: alias/aws/sqs\n      FifoQueue: true")
}

#[test]
fn a_fifo_queue_with_a_batch_above_ten_is_caught() {
    let fifo = fifo_good()
        .replace("MaximumBatchingWindowInSeconds: 5", "MaximumBatchingWindowInSeconds: 0")
        .replace("BatchSize: 10", "BatchSize: 11");
    assert_eq!(rules(&fifo), ["fifo-batch-size"]);
}

#[test]
fn a_fifo_queue_with_a_batching_window_is_caught() {
    assert_eq!(rules(&fifo_good()), ["fifo-batching-window"]);
}

#[test]
fn a_queue_without_a_redrive_policy_is_caught() {
    let text = GOOD.replace(
        "      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt Dlq.Arn\n        maxReceiveCount: 5\n",
        "",
    );
    assert_eq!(rules(&text), ["redrive-policy"]);
}

#[test]
fn a_batch_above_ten_without_a_window_is_caught() {
    let text = GOOD
        .replace("MaximumBatchingWindowInSeconds: 5", "MaximumBatchingWindowInSeconds: 0")
        .replace("BatchSize: 10", "BatchSize: 100");
    assert_eq!(rules(&text), ["batching-window"]);
}

#[test]
fn a_maximum_concurrency_outside_lambdas_range_is_caught() {
    assert_eq!(rules(&GOOD.replace("MaximumConcurrency: 5", "MaximumConcurrency: 1")), ["limit"]);
}

#[test]
fn a_queue_outside_the_template_is_reported_as_unchecked() {
    let text = GOOD.replace("Queue: !GetAtt Queue.Arn", "Queue: arn:aws:sqs:us-east-1:1:elsewhere");
    assert_eq!(rules(&text), ["queue-in-template"]);
}

#[test]
fn an_unencrypted_queue_or_dead_letter_queue_is_caught() {
    assert_eq!(rules(&GOOD.replace("      SqsManagedSseEnabled: true\n", "")), ["queue-encryption"]);
    assert_eq!(
        rules(&GOOD.replace("      KmsMasterKeyId: alias/aws/sqs\n", "      DelaySeconds: 0\n")),
        ["queue-encryption"]
    );
}

#[test]
fn broad_function_policies_are_caught() {
    let with = |policies: &str| {
        GOOD.replace("      Events:\n", &format!("      Policies:\n{policies}      Events:\n"))
    };
    assert_eq!(rules(&with("        - AmazonSQSFullAccess\n")), ["least-privilege"]);
    assert_eq!(
        rules(&with(
            "        - Statement:\n            - Effect: Allow\n              Action: sqs:*\n              Resource: '*'\n"
        )),
        ["least-privilege"]
    );
    assert_eq!(
        rules(&with("        - SQSPollerPolicy:\n            QueueName: !GetAtt Queue.QueueName\n")),
        Vec::<&str>::new()
    );
}

#[test]
fn a_redrive_policy_given_as_a_json_string_is_understood() {
    let text = GOOD.replace(
        "      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt Dlq.Arn\n        maxReceiveCount: 5\n",
        "      RedrivePolicy: '{\"deadLetterTargetArn\": \"arn:x\", \"maxReceiveCount\": \"4\"}'\n",
    );
    let template = Template::parse(&text).unwrap();
    assert_eq!(template.queues["Queue"].redrive, Some((None, 4)));
}

#[test]
fn several_sqs_functions_need_a_choice() {
    let two = GOOD.replace("  Queue:\n    Type: AWS::SQS::Queue", "  Fn2:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        Q:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt Queue.Arn\n  Queue:\n    Type: AWS::SQS::Queue");
    let template = Template::parse(&two).unwrap();
    assert!(template.function(None).is_err());
    assert_eq!(template.function(Some("Fn2")).unwrap().logical_id, "Fn2");
}

/// [`GOOD`] with these FilterCriteria patterns on its event.
fn with_filters(patterns: &[&str]) -> String {
    let filters: String = patterns.iter().map(|p| format!("                - Pattern: '{p}'\n")).collect();
    GOOD.replace(
        "            ScalingConfig:\n",
        &format!(
            "            FilterCriteria:\n              Filters:\n{filters}            ScalingConfig:\n"
        ),
    )
}

#[test]
fn filter_criteria_are_read_with_parameters_resolved() {
    let text = format!(
        "Parameters:\n  Kind:\n    Type: String\n    Default: order\n{}",
        GOOD.replace(
            "            ScalingConfig:\n",
            "            FilterCriteria:\n              Filters:\n                - Pattern: !Sub '{\"body\": {\"kind\": [\"${Kind}\"]}}'\n            ScalingConfig:\n"
        )
    );
    let template = Template::parse(&text).unwrap();
    assert_eq!(template.functions[0].sqs_events[0].filters, [r#"{"body": {"kind": ["order"]}}"#]);
    assert_eq!(template.check(), []);
}

#[test]
fn a_broken_filter_pattern_is_caught_with_its_position() {
    let findings = Template::parse(&with_filters(&[r#"{"body": {"kind": ["order"]}"#])).unwrap().check();
    assert_eq!(findings.iter().map(|f| f.rule).collect::<Vec<_>>(), ["filter-pattern"]);
    assert!(findings[0].message.contains("line 1 column"), "{}", findings[0].message);
}

#[test]
fn an_unknown_operator_and_too_many_filters_are_caught() {
    assert_eq!(rules(&with_filters(&[r#"{"body": {"kind": [{"wildcard": "o*"}]}}"#])), ["filter-pattern"]);
    assert_eq!(rules(&with_filters(&[r#"{"body": {"kind": ["a"]}}"#; 6])), ["filter-pattern"]);
}

#[test]
fn a_filter_that_can_never_match_is_caught() {
    let numeric_attribute = r#"{"attributes": {"ApproximateReceiveCount": [{"numeric": [">", 1]}]}}"#;
    assert_eq!(rules(&with_filters(&[numeric_attribute])), ["filter-never-matches"]);
}

#[test]
fn a_filter_on_a_fifo_queue_is_a_warning_not_a_failure() {
    let fifo = with_filters(&[r#"{"body": {"kind": ["a"]}}"#])
        .replace("MaximumBatchingWindowInSeconds: 5", "MaximumBatchingWindowInSeconds: 0")
        .replace("VisibilityTimeout: 185", "VisibilityTimeout: 185\n      FifoQueue: true")
        .replace("KmsMasterKeyId: alias/aws/sqs", "KmsMasterKeyId: alias/aws/sqs\n      FifoQueue: true");
    let findings = Template::parse(&fifo).unwrap().check();
    assert_eq!(findings.iter().map(|f| (f.rule, f.warning)).collect::<Vec<_>>(), [("filter-fifo", true)]);
}

#[test]
fn two_functions_on_one_queue_with_a_filter_are_caught() {
    let two = with_filters(&[r#"{"body": {"kind": ["a"]}}"#]).replace(
        "  Queue:\n    Type: AWS::SQS::Queue",
        "  Fn2:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        Q:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt Queue.Arn\n            FunctionResponseTypes: [ReportBatchItemFailures]\n  Queue:\n    Type: AWS::SQS::Queue",
    );
    assert_eq!(rules(&two), ["filter-shared-queue"]);
}

#[test]
fn a_queue_is_named_by_its_queue_name_or_its_logical_id() {
    let named = GOOD
        .replace("      VisibilityTimeout: 185\n", "      VisibilityTimeout: 185\n      QueueName: orders\n");
    assert_eq!(Template::parse(&named).unwrap().queues["Queue"].local_name(), "orders");
    assert_eq!(Template::parse(GOOD).unwrap().queues["Queue"].local_name(), "Queue");
    assert_eq!(Template::parse(&fifo_good()).unwrap().queues["Queue"].local_name(), "Queue.fifo");
}

/// Every numeric field the model reads, with a value past each end of its AWS range: each is one
/// `limit` finding naming the field, the value and the range, and a run refuses the template.
#[test]
fn every_number_outside_its_aws_range_is_one_finding_that_names_field_value_and_range() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "    Timeout: 30\n",
            "    Timeout: 18446744073709551615\n",
            "Fn.Timeout is 18446744073709551615, outside 1..=900",
        ),
        ("    Timeout: 30\n", "    Timeout: 0\n", "Fn.Timeout is 0, outside 1..=900"),
        (
            "    Timeout: 30\n",
            "    Timeout: 30\n    MemorySize: 99999\n",
            "Fn.MemorySize is 99999, outside 128..=10240",
        ),
        ("BatchSize: 10", "BatchSize: 10001", "Fn.Events.Queue.BatchSize is 10001, outside 1..=10000"),
        ("BatchSize: 10", "BatchSize: 0", "Fn.Events.Queue.BatchSize is 0, outside 1..=10000"),
        (
            "MaximumBatchingWindowInSeconds: 5",
            "MaximumBatchingWindowInSeconds: 301",
            "MaximumBatchingWindowInSeconds is 301, outside 0..=300",
        ),
        ("MaximumConcurrency: 5", "MaximumConcurrency: 1001", "MaximumConcurrency is 1001, outside 2..=1000"),
        (
            "VisibilityTimeout: 185",
            "VisibilityTimeout: 43201",
            "Queue.VisibilityTimeout is 43201, outside 0..=43200",
        ),
        (
            "VisibilityTimeout: 185",
            "VisibilityTimeout: 185\n      MessageRetentionPeriod: 59",
            "Queue.MessageRetentionPeriod is 59, outside 60..=1209600",
        ),
        (
            "maxReceiveCount: 5",
            "maxReceiveCount: 1001",
            "Queue.RedrivePolicy.maxReceiveCount is 1001, outside 1..=1000",
        ),
        (
            "BatchSize: 10",
            "BatchSize: -1",
            "Fn.Events.Queue.BatchSize is -1, not a whole number from 1 to 10000",
        ),
        ("BatchSize: 10", "BatchSize: 2.5", "Fn.Events.Queue.BatchSize is 2.5, not a whole number"),
        (
            "BatchSize: 10",
            "BatchSize: !Ref Missing",
            "Fn.Events.Queue.BatchSize is !Ref \"Missing\", which cannot be worked out",
        ),
        (
            "    Timeout: 30\n",
            "    Timeout: !If [Big, 900, 30]\n",
            "Fn.Timeout is !If [\"Big\",900,30], which cannot be worked out",
        ),
        (
            "VisibilityTimeout: 185",
            "VisibilityTimeout: 20",
            "Fn.Timeout 30 s is above Queue.VisibilityTimeout 20 s: AWS refuses the event source mapping",
        ),
        (
            "    Timeout: 30\n",
            "    Timeout: 30\n    Environment:\n      Variables:\n        AWS_LAMBDA_RUNTIME_API: 127.0.0.1:9001\n",
            "Fn.Environment.Variables.AWS_LAMBDA_RUNTIME_API is reserved",
        ),
        (
            "FunctionResponseTypes: [ReportBatchItemFailures]",
            "FunctionResponseTypes: [ReportBatchItemFailures]\n            MetricsConfig: {Metrics: [Everything]}",
            "Fn.Events.Queue.MetricsConfig.Metrics has \"Everything\": the only metric group an SQS mapping offers is EventCount",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(GOOD.contains(from), "{from}");
        let template = Template::parse(&GOOD.replace(from, to)).unwrap();
        let limits: Vec<String> =
            template.check().into_iter().filter(|f| f.rule == "limit").map(|f| f.message).collect();
        assert_eq!(limits.len(), 1, "{to}: {limits:?}");
        assert!(limits[0].contains(expected), "{to}: {}", limits[0]);
        let refused = template.usable().unwrap_err().to_string();
        assert!(refused.contains(expected) && refused.contains("local-runner check"), "{refused}");
    }
}

#[test]
fn a_number_given_by_a_declared_parameter_is_read_and_one_past_the_range_is_still_caught() {
    let with_parameter = format!(
        "Parameters:\n  Size:\n    Type: Number\n    Default: 7\n{}",
        GOOD.replace("BatchSize: 10", "BatchSize: !Ref Size")
    );
    let template = Template::parse(&with_parameter).unwrap();
    assert_eq!(template.functions[0].sqs_events[0].batch_size, 7);
    assert!(template.problems.is_empty());
    let overridden = Template::parse_with(&with_parameter, &[("Size".into(), "20000".into())]).unwrap();
    assert_eq!(overridden.problems.len(), 1, "{:?}", overridden.problems);
}

#[test]
fn a_redrive_policy_given_as_a_sub_is_understood_and_an_unreadable_one_is_not_called_missing() {
    let sub = GOOD.replace(
        "      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt Dlq.Arn\n        maxReceiveCount: 5\n",
        "      RedrivePolicy: !Sub '{\"deadLetterTargetArn\": \"${Dlq.Arn}\", \"maxReceiveCount\": 4}'\n",
    );
    let template = Template::parse(&sub).unwrap();
    assert_eq!(template.queues["Queue"].redrive, Some((Some("Dlq".into()), 4)));
    assert_eq!(template.check(), []);
    let broken = GOOD.replace(
        "      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt Dlq.Arn\n        maxReceiveCount: 5\n",
        "      RedrivePolicy: !Sub '{not json'\n",
    );
    let findings = Template::parse(&broken).unwrap().check();
    let redrive: Vec<&str> =
        findings.iter().filter(|f| f.rule == "redrive-policy").map(|f| f.message.as_str()).collect();
    assert_eq!(redrive.len(), 1, "{findings:?}");
    assert!(redrive[0].contains("cannot be read"), "{}", redrive[0]);
}

#[test]
fn environment_values_only_a_deployment_resolves_are_reported_not_dropped_silently() {
    let text = GOOD.replace(
        "    Properties:\n      Events:",
        "    Properties:\n      Environment:\n        Variables:\n          PLAIN: x\n          QUEUE_URL: !GetAtt Queue.QueueUrl\n          NAME: !Sub '${AWS::StackName}-x'\n      Events:",
    );
    let template = Template::parse(&text).unwrap();
    let function = &template.functions[0];
    assert_eq!(function.environment.keys().collect::<Vec<_>>(), ["PLAIN"]);
    assert_eq!(function.unresolved_environment.keys().collect::<Vec<_>>(), ["NAME", "QUEUE_URL"]);
    let findings = template.check();
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert!(findings.iter().all(|f| f.rule == "environment-unresolved" && f.warning));
    assert!(findings.iter().any(|f| f.message.contains("QUEUE_URL is !GetAtt")), "{findings:?}");
}

#[test]
fn two_functions_on_one_queue_without_filters_are_a_warning() {
    let two = GOOD.replace("  Queue:\n    Type: AWS::SQS::Queue", "  Fn2:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        Q:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt Queue.Arn\n            FunctionResponseTypes: [ReportBatchItemFailures]\n  Queue:\n    Type: AWS::SQS::Queue");
    let findings = Template::parse(&two).unwrap().check();
    assert_eq!(findings.iter().map(|f| (f.rule, f.warning)).collect::<Vec<_>>(), [("shared-queue", true)]);
    assert!(findings[0].message.contains("--function"), "{}", findings[0].message);
}

#[test]
fn a_timeout_inside_the_deadline_reserve_is_caught() {
    let text = GOOD
        .replace("    Timeout: 30\n", "    Timeout: 1\n")
        .replace("VisibilityTimeout: 185", "VisibilityTimeout: 60");
    assert_eq!(rules(&text), ["deadline-reserve"]);
    let lowered = text.replace(
        "    Properties:\n      Events:",
        "    Properties:\n      Environment:\n        Variables:\n          DEADLINE_RESERVE_MS: 200\n      Events:",
    );
    assert_eq!(rules(&lowered), Vec::<&str>::new());
}

#[test]
fn a_template_too_large_or_nested_too_deep_is_refused_at_once() {
    let nested = "[".repeat(200_000);
    let started = std::time::Instant::now();
    let error = Template::parse(&nested).unwrap_err();
    assert!(matches!(error, ParseError::TooDeep) && error.to_string().contains("deeper than 64"), "{error}");
    let huge = format!("Resources: {{}}\n#{}\n", "x".repeat(2 * 1024 * 1024));
    let error = Template::parse(&huge).unwrap_err();
    assert!(matches!(error, ParseError::TooLarge { .. }) && error.to_string().contains("bytes"), "{error}");
    // Both are refused before the YAML parser sees them (it would take a minute on the first).
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn the_mapping_s_event_count_metrics_are_read() {
    let with = GOOD.replace(
        "FunctionResponseTypes: [ReportBatchItemFailures]",
        "FunctionResponseTypes: [ReportBatchItemFailures]\n            MetricsConfig: {Metrics: [EventCount]}",
    );
    let events = |text: &str| Template::parse(text).unwrap().functions[0].sqs_events[0].event_count_metrics;
    assert!(events(&with));
    assert!(!events(GOOD));
    assert!(rules(&with).is_empty(), "{:?}", rules(&with));
}

#[test]
fn the_repository_template_turns_idempotency_on_with_its_table_and_policy_when_given_a_table_name() {
    let off = Template::parse(REPO_TEMPLATE).unwrap();
    assert_eq!(off.functions[0].idempotency_table, None, "off by default");
    let on = Template::parse_with(REPO_TEMPLATE, &[("IdempotencyTableName".into(), "orders-seen".into())])
        .unwrap();
    assert_eq!(on.functions[0].idempotency_table, Some(TableRef::Named("orders-seen".into())));
    let table = on.idempotency_table(&on.functions[0]).expect("on").expect("declared");
    assert_eq!(table.local_name(), "orders-seen");
    assert_eq!(
        (table.key.clone(), table.ttl.as_deref()),
        (Some(("id".into(), "S".into())), Some("expiration"))
    );
    assert_eq!(on.check(), []);
    let fifo =
        Template::parse_with(REPO_FIFO_TEMPLATE, &[("IdempotencyTableName".into(), "fifo-seen".into())])
            .unwrap();
    assert_eq!(fifo.check(), []);
}

/// [`GOOD`] with `IDEMPOTENCY_TABLE: seen`, and `extra` added under its resources.
fn idempotent(policies: &str, extra: &str) -> String {
    GOOD.replace(
        "    Properties:\n      Events:",
        &format!("    Properties:\n      Environment:\n        Variables:\n          IDEMPOTENCY_TABLE: seen\n{policies}      Events:"),
    ) + extra
}

const SEEN_TABLE: &str = "  Seen:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      TableName: seen\n      KeySchema: [{AttributeName: id, KeyType: HASH}]\n      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]\n      TimeToLiveSpecification: {AttributeName: expiration, Enabled: true}\n";
const CRUD_POLICY: &str =
    "      Policies:\n        - DynamoDBCrudPolicy:\n            TableName: !Ref Seen\n";

#[test]
fn a_function_that_turns_idempotency_on_without_its_table_is_refused_with_what_to_add() {
    let findings = Template::parse(&idempotent(CRUD_POLICY, "")).unwrap().check();
    assert_eq!(findings.iter().map(|f| (f.rule, f.warning)).collect::<Vec<_>>(), [("idempotency", false)]);
    assert!(findings[0].message.contains("AWS::DynamoDB::Table") && findings[0].message.contains("seen"));
}

#[test]
fn a_function_that_turns_idempotency_on_without_a_policy_for_its_table_is_refused() {
    let findings = Template::parse(&idempotent("", SEEN_TABLE)).unwrap().check();
    assert_eq!(findings.iter().map(|f| (f.rule, f.warning)).collect::<Vec<_>>(), [("idempotency", false)]);
    assert!(findings[0].message.contains("DynamoDBCrudPolicy"), "{}", findings[0].message);
    let read_only = "      Policies:\n        - DynamoDBReadPolicy:\n            TableName: seen\n";
    assert_eq!(rules(&idempotent(read_only, SEEN_TABLE)), ["idempotency"]);
}

#[test]
fn an_idempotency_table_with_its_table_its_policy_and_ttl_keeps_every_rule() {
    assert_eq!(Template::parse(&idempotent(CRUD_POLICY, SEEN_TABLE)).unwrap().check(), []);
    let inline = "      Policies:\n        - Statement:\n            - Effect: Allow\n              Action: [dynamodb:PutItem, dynamodb:DeleteItem, dynamodb:GetItem]\n              Resource: '*'\n";
    assert_eq!(Template::parse(&idempotent(inline, SEEN_TABLE)).unwrap().check(), []);
}

#[test]
fn an_idempotency_table_without_ttl_is_a_warning_and_a_wrong_key_an_error() {
    let no_ttl =
        SEEN_TABLE.replace("      TimeToLiveSpecification: {AttributeName: expiration, Enabled: true}\n", "");
    let findings = Template::parse(&idempotent(CRUD_POLICY, &no_ttl)).unwrap().check();
    assert_eq!(findings.iter().map(|f| (f.rule, f.warning)).collect::<Vec<_>>(), [("idempotency", true)]);
    let wrong_key = SEEN_TABLE.replace("AttributeType: S", "AttributeType: N");
    let findings = Template::parse(&idempotent(CRUD_POLICY, &wrong_key)).unwrap().check();
    assert_eq!(findings.iter().map(|f| (f.rule, f.warning)).collect::<Vec<_>>(), [("idempotency", false)]);
}

#[test]
fn a_table_name_dynamodb_refuses_is_a_problem_quoted_escaped_and_cut() {
    let hostile = format!("bad\u{1b}[31m{}", "x".repeat(300));
    let template = Template::parse_with(REPO_TEMPLATE, &[("IdempotencyTableName".into(), hostile)]).unwrap();
    let problems: Vec<&Finding> = template.problems.iter().filter(|f| f.rule == "limit").collect();
    assert_eq!(problems.len(), 1, "{:?}", template.problems);
    let message = &problems[0].message;
    assert!(message.contains("IdempotencyTable.TableName") && message.contains("\\u{1b}"), "{message}");
    assert!(!message.contains('\u{1b}') && message.len() < 300, "{message}");
    for fine in ["abc", "orders-seen.v2_x"] {
        let template =
            Template::parse_with(REPO_TEMPLATE, &[("IdempotencyTableName".into(), fine.into())]).unwrap();
        assert_eq!(template.problems, []);
    }
    let short = Template::parse_with(REPO_TEMPLATE, &[("IdempotencyTableName".into(), "ab".into())]).unwrap();
    assert_eq!(short.problems.len(), 1);
}

#[test]
fn the_repository_templates_turn_large_payloads_on_with_their_bucket_and_policy_when_given_a_bucket_name() {
    let off = Template::parse(REPO_TEMPLATE).unwrap();
    assert!(off.payload_bucket(&off.functions[0]).is_none(), "off by default");
    for text in [REPO_TEMPLATE, REPO_FIFO_TEMPLATE] {
        let on =
            Template::parse_with(text, &[("PayloadBucketName".into(), "orders-payloads".into())]).unwrap();
        let bucket = on.payload_bucket(&on.functions[0]).expect("on").expect("declared");
        assert_eq!(
            (bucket.logical_id.as_str(), bucket.name.as_deref()),
            ("PayloadBucket", Some("orders-payloads"))
        );
        assert_eq!(on.check(), []);
    }
}

/// [`GOOD`] with `PAYLOAD_BUCKET: big-bodies`, `policies`, and `extra` added under its resources.
fn large_payloads(policies: &str, extra: &str) -> String {
    GOOD.replace(
        "    Properties:\n      Events:",
        &format!("    Properties:\n      Environment:\n        Variables:\n          PAYLOAD_BUCKET: big-bodies\n{policies}      Events:"),
    ) + extra
}

const PAYLOAD_BUCKET: &str =
    "  Bodies:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: big-bodies\n";

#[test]
fn a_function_that_reads_large_payloads_needs_its_bucket_declared_and_a_policy_to_read_and_delete_there() {
    let crud = "      Policies:\n        - S3CrudPolicy:\n            BucketName: !Ref Bodies\n";
    assert_eq!(Template::parse(&large_payloads(crud, PAYLOAD_BUCKET)).unwrap().check(), []);
    let findings = Template::parse(&large_payloads(crud, "")).unwrap().check();
    assert_eq!(findings.iter().map(|f| (f.rule, f.warning)).collect::<Vec<_>>(), [("payload", false)]);
    assert!(findings[0].message.contains("AWS::S3::Bucket") && findings[0].message.contains("big-bodies"));
    let findings = Template::parse(&large_payloads("", PAYLOAD_BUCKET)).unwrap().check();
    assert_eq!(findings.iter().map(|f| f.rule).collect::<Vec<_>>(), ["payload"]);
    assert!(findings[0].message.contains("S3CrudPolicy"), "{}", findings[0].message);
    let inline = "      Policies:\n        - Statement:\n            - Effect: Allow\n              Action: [s3:GetObject, s3:DeleteObject]\n              Resource: '*'\n";
    assert_eq!(Template::parse(&large_payloads(inline, PAYLOAD_BUCKET)).unwrap().check(), []);
}

#[test]
fn a_bucket_name_s3_refuses_is_a_problem_quoted_escaped_and_cut() {
    let hostile = format!("bad\u{1b}[31m{}", "x".repeat(300));
    let template = Template::parse_with(REPO_TEMPLATE, &[("PayloadBucketName".into(), hostile)]).unwrap();
    let problems: Vec<&Finding> = template.problems.iter().filter(|f| f.rule == "limit").collect();
    assert_eq!(problems.len(), 1, "{:?}", template.problems);
    let message = &problems[0].message;
    assert!(message.contains("PayloadBucket.BucketName") && message.contains("\\u{1b}"), "{message}");
    assert!(!message.contains('\u{1b}') && message.len() < 300, "{message}");
    for refused in ["ab", "Upper-case", "-edge", "under_score"] {
        let template =
            Template::parse_with(REPO_TEMPLATE, &[("PayloadBucketName".into(), refused.into())]).unwrap();
        assert_eq!(template.problems.len(), 1, "{refused}");
    }
    let fine =
        Template::parse_with(REPO_TEMPLATE, &[("PayloadBucketName".into(), "orders.payloads-1".into())])
            .unwrap();
    assert_eq!(fine.problems, []);
}
