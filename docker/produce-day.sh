#!/bin/sh
# Sends a day of events (config/day.jsonl) to omo's input topics, keyed as the contract says:
# order.* on omo.orders by order_id, stock.* on omo.stock by node_id/sku. The opening stock
# (the leading stock.snapshot lines) goes first, then the rest of the day, each topic in file
# order. Uses kcat when it is installed, else Kafka's own console producer.
#
#   produce-day.sh BROKERS DAY.jsonl
set -eu
brokers=${1:?usage: produce-day.sh BROKERS DAY.jsonl}
day=${2:?usage: produce-day.sh BROKERS DAY.jsonl}
tab=$(printf '\t')

send() { # TOPIC: KEY<TAB>VALUE lines on stdin
  if command -v kcat >/dev/null 2>&1; then
    kcat -P -b "$brokers" -t "$1" -K "$tab" -z lz4
  else
    /opt/kafka/bin/kafka-console-producer.sh --bootstrap-server "$brokers" --topic "$1" \
      --producer-property compression.type=lz4 \
      --property parse.key=true --property "key.separator=$tab"
  fi
}

# KEY<TAB>LINE for the lines of one topic; part: opening (leading snapshots) or rest.
keyed() { # TOPIC PART
  awk -v topic="$1" -v part="$2" '
    function field(name,   s) {
      if (!match($0, "\"" name "\": *\"[^\"]*\"")) return ""
      s = substr($0, RSTART, RLENGTH); sub("^\"" name "\": *\"", "", s); sub("\"$", "", s)
      return s
    }
    { stock = $0 ~ /"type": *"stock\./ }
    opening && !($0 ~ /"type": *"stock\.snapshot"/) { opening = 0 }
    NR == 1 { opening = $0 ~ /"type": *"stock\.snapshot"/ }
    (part == "opening") != opening { next }
    topic == "stock" && stock  { print field("node_id") "/" field("sku") "\t" $0 }
    topic == "orders" && !stock { print field("order_id") "\t" $0 }
  ' "$day"
}

keyed stock opening | send omo.stock
echo "[producer] opening stock sent" >&2
keyed stock rest | send omo.stock &
keyed orders rest | send omo.orders
wait
echo "[producer] $(wc -l <"$day") events of $day sent" >&2
