//! librdkafka client settings shared by the producer, the consumer and the admin client.

use crate::config::KafkaConfig;
use rdkafka::ClientConfig;

/// Base settings: brokers, client id and every user-supplied librdkafka property.
pub fn base_config(kafka: &KafkaConfig, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers).set("client.id", client_id);
    for (key, value) in &kafka.properties {
        config.set(key, value);
    }
    config
}
