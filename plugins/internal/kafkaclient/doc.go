// Package kafkaclient is the Kafka client shared by the pubsub.kafka and
// bindings.kafka plugins (franz-go kgo): component metadata parsing with
// Dapr's names, producing, and consuming as a member of a consumer group
// with commits only after the handler acknowledged.
//
// Data flow: ParseConfig turns component metadata into a Config; New opens
// one producing client and checks the cluster answers. Publish turns
// Messages into records (key = partition key, headers = metadata, content
// type in the "content-type" header) and waits for the brokers' acks.
// Consume opens a client of its own that joins the consumer group and, for
// every assigned partition, runs one worker that hands records to the
// handler in offset order: nil marks the record for commit (committed every
// commitInterval, when partitions are revoked and when Consume returns), an
// error retries the same record after a growing pause (consumeRetryInterval,
// doubling up to 32×), so a partition never skips an unacknowledged record.
// A record whose handler never returned is never committed: after a crash
// or a rebalance the group's next owner of the partition reads it again
// (at-least-once).
package kafkaclient
