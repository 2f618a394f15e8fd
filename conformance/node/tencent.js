// Drives tencentcloud-sdk-nodejs-cvm exactly as its users configure it, for
// conformance/test_node_tencent.py (started by node_sdk.run_node).
//
// stdin, one JSON job:
//   { endpoint: "127.0.0.1:PORT", protocol: "http://", reqMethod: "POST"|"GET",
//     signMethod: "TC3-HMAC-SHA256"|"HmacSHA1"|"HmacSHA256", region: "ap-guangzhou",
//     credential: { secretId, secretKey },
//     calls: [ call, ... ] }
// A call is one of
//   { action: "DescribeZones", params: {...}, client: {...overrides}, clockSkew: seconds,
//     repeat: { max: N, until: "Code" } }
//   { wait: { instanceIds: [...], state: "RUNNING", timeout: seconds } }
// `client` overrides any job field for that call only (another secret key, region, sign
// method...). `clockSkew` runs the call on a client whose clock is that many seconds off
// (Date is shifted; the SDK reads the time from it). A `wait` polls DescribeInstances through
// the same client until every instance is in `state` with no operation running (`state`
// null: until none of them exists). `repeat` sends the call up to `max` times back to back,
// stopping at the first error `until`.
// Any string value "${N.path}" in params or instanceIds is replaced by that field of call N's
// response (N counts from 0, the path is dot-separated: "${0.InstanceIdSet}").
//
// stdout, one JSON document: { sdkVersion, results: [ per call:
//   { response: {...} }                                   the SDK resolved
//   { error: { code, message, requestId, httpCode } }     the SDK rejected (an API error)
//   { instances: [...] }                                  a wait that was met
//   { timeout: { last: [...] } }                          a wait that was not
//   { repeated: ["ok" or code, ...] }                     a repeated call
//   { skipped: "why" }                                    a reference to a failed call
// ] }. A driver bug exits non-zero.
"use strict";

const { cvm } = require("tencentcloud-sdk-nodejs-cvm");
const sdkVersion = require("tencentcloud-sdk-nodejs-cvm/package.json").version;
const commonVersion = require("tencentcloud-sdk-nodejs-common/package.json").version;

// The SDK's fetch uses $http_proxy whatever $no_proxy says; the server is on loopback.
delete process.env.http_proxy;

const RealDate = Date;
let skewMs = 0;
class ClockDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + skewMs);
    else super(...args);
  }
  static now() {
    return RealDate.now() + skewMs;
  }
}
globalThis.Date = ClockDate;

function readStdin() {
  return new Promise((resolve, reject) => {
    let data = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => resolve(data));
    process.stdin.on("error", reject);
  });
}

function makeClient(cfg) {
  return new cvm.v20170312.Client({
    credential: cfg.credential,
    region: cfg.region,
    profile: {
      signMethod: cfg.signMethod,
      httpProfile: {
        endpoint: cfg.endpoint,
        protocol: cfg.protocol || "http://",
        reqMethod: cfg.reqMethod || "POST",
        reqTimeout: cfg.reqTimeout || 30,
      },
    },
  });
}

class Skip extends Error {}

function resolveRefs(value, results) {
  if (typeof value === "string") {
    const m = /^\$\{(\d+)((?:\.[^.}]+)*)\}$/.exec(value);
    if (!m) return value;
    const prior = results[Number(m[1])];
    if (!prior || !("response" in prior)) throw new Skip(`${value}: call ${m[1]} has no response`);
    let v = prior.response;
    for (const key of m[2].split(".").slice(1)) {
      if (v === null || typeof v !== "object" || !(key in v)) throw new Skip(`${value}: no ${key}`);
      v = v[key];
    }
    return v;
  }
  if (Array.isArray(value)) return value.map((v) => resolveRefs(v, results));
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveRefs(v, results);
    return out;
  }
  return value;
}

function errorOf(e) {
  return {
    error: {
      code: e.code || "",
      message: e.message || String(e),
      requestId: e.requestId || "",
      httpCode: e.httpCode || null,
    },
  };
}

async function call(client, action, params) {
  const method = client[action];
  try {
    // Actions the SDK does not know go through its public request(), as users do.
    const response =
      typeof method === "function" ? await method.call(client, params) : await client.request(action, params);
    return { response };
  } catch (e) {
    return errorOf(e);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function wait(client, spec) {
  const ids = spec.instanceIds;
  const deadline = RealDate.now() + (spec.timeout || 60) * 1000;
  let last = null;
  for (let n = 0; ; n++) {
    // Each poll differs from the last 50 (Limit 100..51, ids are fewer): with a legacy
    // signature the SDK's Nonce has 65,536 values, and the same request with the same
    // Timestamp and Nonce is a replay to nubis (docs/hostile-input.md).
    const got = await call(client, "DescribeInstances", { InstanceIds: ids, Limit: 100 - (n % 50) });
    if ("error" in got) return got;
    last = got.response.InstanceSet || [];
    if (spec.state === null) {
      if (last.length === 0) return { instances: [] };
    } else if (
      last.length === ids.length &&
      last.every((i) => i.InstanceState === spec.state && i.LatestOperationState !== "OPERATING")
    ) {
      return { instances: last };
    }
    if (RealDate.now() > deadline) return { timeout: { last } };
    await sleep(50);
  }
}

async function main() {
  const job = JSON.parse(await readStdin());
  const base = makeClient(job);
  const results = [];
  for (const c of job.calls) {
    try {
      if (c.wait) {
        results.push(await wait(base, resolveRefs(c.wait, results)));
        continue;
      }
      const params = resolveRefs(c.params || {}, results);
      const client = c.client ? makeClient({ ...job, ...c.client }) : base;
      skewMs = (c.clockSkew || 0) * 1000;
      try {
        if (c.repeat) {
          const codes = [];
          for (let n = 0; n < c.repeat.max; n++) {
            const got = await call(client, c.action, params);
            const code = "error" in got ? got.error.code : "ok";
            codes.push(code);
            if (code === c.repeat.until) break;
          }
          results.push({ repeated: codes });
        } else {
          results.push(await call(client, c.action, params));
        }
      } finally {
        skewMs = 0;
      }
    } catch (e) {
      if (!(e instanceof Skip)) throw e;
      results.push({ skipped: e.message });
    }
  }
  process.stdout.write(JSON.stringify({ sdkVersion, commonVersion, results }));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(2);
});
