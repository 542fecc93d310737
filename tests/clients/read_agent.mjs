// A client of the noisy-neighbor agent's socket written without any of the
// package's code: one JSON line out, Arrow IPC streams in, read with Apache
// Arrow's JavaScript library. Prints one JSON line: the histograms of a
// reading (cgroup id -> waits), and the events of a stream of one cgroup
// (their count, and what the agent said this client lost).
//
//   node read_agent.mjs SOCKET CGROUP_ID SECONDS
import net from "node:net";
import { RecordBatchReader } from "apache-arrow";

const [socketPath, cgroupId, seconds] = process.argv.slice(2);

// Sends one request on a new connection; yields that connection's Arrow streams.
async function* answers(request) {
  const conn = net.createConnection(socketPath);
  await new Promise((resolve, reject) => conn.once("connect", resolve).once("error", reject));
  conn.write(JSON.stringify(request) + "\n");
  // Several streams follow one another on the connection: readAll() reads each.
  for await (const reader of RecordBatchReader.readAll(conn)) {
    yield reader;
  }
}

function meta(reader) {
  return JSON.parse(reader.schema.metadata.get("nn"));
}

const out = { reading: {}, streamed: 0, counters: null };

// A reading is three streams: histograms, culprits, switch-outs.
let n = 0;
for await (const reader of answers({ op: "reading" })) {
  if (!meta(reader).ok) throw new Error(meta(reader).error);
  if (n === 0) {
    for await (const batch of reader) {
      const ids = batch.getChild("cgroup_id").toArray();
      const counts = batch.getChild("count").toArray();
      ids.forEach((id, i) => { out.reading[id.toString()] = Number(counts[i]); });
    }
  } else {
    for await (const _ of reader); // drain
  }
  if (++n === 3) break;
}

// A stream of one cgroup's waits, for SECONDS.
const ends = Date.now() + Number(seconds) * 1000;
for await (const reader of answers({ op: "subscribe", cgroups: [Number(cgroupId)] })) {
  if (!meta(reader).ok) throw new Error(meta(reader).error);
  for await (const batch of reader) {
    const ids = batch.getChild("cgroup_id").toArray();
    out.streamed += ids.filter((id) => id === BigInt(cgroupId)).length;
    out.counters = JSON.parse(batch.metadata.get("nn"));
    if (Date.now() > ends) break;
  }
  break;
}
console.log(JSON.stringify(out));
process.exit(0);
