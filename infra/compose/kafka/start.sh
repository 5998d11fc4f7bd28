#!/bin/sh
# Start the compose stack's Kafka: render server.properties, format the storage on first start with the SCRAM
# credentials of the service's user (KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD), then run the broker.
set -eu
: "${KAFKA_SASL_PASSWORD:?set KAFKA_SASL_PASSWORD}"
user="${KAFKA_SASL_USERNAME:-governance}"
data=/var/lib/kafka/data
conf=/tmp/server.properties
sed -e "s|@LISTEN_HOST@|0.0.0.0|g" -e "s|@ADVERTISED_HOST@|${KAFKA_ADVERTISED_HOST:-kafka}|g" \
    -e "s|@CLIENT_PORT@|9092|g" -e "s|@CONTROLLER_PORT@|9093|g" -e "s|@INTERNAL_PORT@|9094|g" \
    -e "s|@LOG_DIR@|$data|g" /opt/governance/kafka/server.properties > "$conf"
if [ ! -f "$data/meta.properties" ]; then
    /opt/kafka/bin/kafka-storage.sh format --config "$conf" \
        --cluster-id "$(/opt/kafka/bin/kafka-storage.sh random-uuid)" \
        --add-scram "SCRAM-SHA-512=[name=$user,password=$KAFKA_SASL_PASSWORD]"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$conf"
