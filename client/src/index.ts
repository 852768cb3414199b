/**
 * gameplay-analytics SDK for browsers and Node: `track()` events into the gameplay-analytics
 * WebSocket protocol. See docs/sdk.md in the repository.
 */

export { AnalyticsClient } from "./client.js";
export type { ClientOptions, ClientStats, Consent, OverflowReport, Props } from "./client.js";
export { connect, shareSocket } from "./transport.js";
export type { ConnectOptions, Connection, SharedSocket } from "./transport.js";
export { memoryStorage, defaultStorage } from "./state.js";
export type { StorageAdapter } from "./state.js";
export { keep, threshold, parseRules, CompiledRules } from "./sampling.js";
export { xxh64 } from "./xxh64.js";
export { SCHEMA_HASH, SCHEMA_VERSION } from "./contract.gen.js";
