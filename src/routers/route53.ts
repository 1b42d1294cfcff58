// AWS Route 53 router: the weights of a pair of weighted records (same name and type, one
// SetIdentifier per cluster) in one hosted zone.

import type {
  ListResourceRecordSetsCommandInput,
  ResourceRecordSet,
  Route53Client,
} from '@aws-sdk/client-route-53';
import { type Clock, systemClock } from '../clock.js';
import type { RouteOf } from '../config/schema.js';
import { RouteNotFoundError, RouterError, TimeoutError } from '../errors.js';
import type { RouteSplit } from '../rollout/types.js';
import { abortableSleep, type Sleep } from '../timing.js';
import { AwsApiCaller, type AwsErrorShape, type AwsRetryPolicy } from './aws-call.js';
import { loadRoute53Sdk, pendingClient, type Route53Sdk } from './aws-sdk.js';
import { checkWholePercent, type RouteHandle, weightsOnly } from './router.js';

/** How to wait for a change to reach every Route 53 name server (GetChange says INSYNC). */
export interface Route53SyncPolicy {
  firstDelayMs: number;
  maxDelayMs: number;
  /** Route 53 documents propagation "generally within 60 seconds"; give it twice that. */
  timeoutMs: number;
}

export const DEFAULT_ROUTE53_SYNC: Readonly<Route53SyncPolicy> = {
  firstDelayMs: 1_000,
  maxDelayMs: 10_000,
  timeoutMs: 120_000,
};

export interface Route53RouteOptions {
  route: RouteOf<'route53'>;
  /**
   * The SDK client. Build it with `maxAttempts: 1`: this router retries throttling itself,
   * and the SDK's own retries would multiply the time a call can take. A promise (the
   * registry's, which loads the SDK on first use) is awaited by the first call.
   */
  client: Route53Client | Promise<Route53Client>;
  /** Timeout of each API call (not of the wait for INSYNC: see `sync`). */
  requestTimeoutMs: number;
  retry?: AwsRetryPolicy;
  sync?: Route53SyncPolicy;
  sleep?: Sleep;
  random?: () => number;
  /** Measures the INSYNC deadline; tests pass a ManualClock that their sleep advances. */
  clock?: Clock;
}

type Route53RouteConfig = RouteOf<'route53'>;

/** The two clusters' records, and every record with the same name and type (for the zero rule). */
interface RecordPair {
  oldRecord: ResourceRecordSet & { Weight: number };
  newRecord: ResourceRecordSet & { Weight: number };
  group: ResourceRecordSet[];
}

// ListResourceRecordSets returns at most 300 records a page; 100 pages of one name and type
// is far beyond any real weighted set, so more means the paging is not advancing.
const MAX_PAGES = 100;

/**
 * Weights: a Route 53 weight is an integer 0..255. The router writes `new = w, old = 100 - w`
 * for w percent, so every whole percent is exact and reads back unchanged. The percent is
 * defined between the two clusters' records only; other weighted records of the same name
 * and type (other SetIdentifiers) are left as they are.
 *
 * Route 53 treats weight 0 on every record of a set as an equal split, so both records at 0
 * would send half the traffic to the new cluster; the router never writes that.
 *
 * A written weight is not yet the traffic share: resolvers keep answering from their cache
 * for up to the record's TTL (and some clients longer). setWeight returns once Route 53's own
 * name servers have the change (INSYNC); the controller's observed-traffic-share gate then
 * holds the step until the traffic has actually moved, so keep the TTL short (e.g. 30-60s).
 *
 * The split is the weights: a record's health check (if any) would cost a GetHealthCheckStatus
 * call per record per tick, and resolvers' caches blur its effect anyway.
 */
export class Route53Route implements RouteHandle {
  readonly description: string;
  readonly #route: Route53RouteConfig;
  readonly #client: Promise<Route53Client>;
  readonly #aws: AwsApiCaller;
  readonly #sync: Route53SyncPolicy;
  readonly #sleep: Sleep;
  readonly #clock: Clock;

  constructor(options: Route53RouteOptions) {
    const r53 = options.route;
    this.#route = r53;
    this.description =
      `Route 53 record ${r53.recordName} ${r53.recordType} in zone ${r53.hostedZoneId} ` +
      `(set identifiers ${r53.oldSetIdentifier}/${r53.newSetIdentifier})`;
    this.#client = pendingClient(options.client);
    this.#aws = new AwsApiCaller({
      requestTimeoutMs: options.requestTimeoutMs,
      // PriorRequestNotComplete: the zone's previous change is still being applied.
      retryableNames: ['PriorRequestNotComplete'],
      ...(options.retry ? { retry: options.retry } : {}),
      ...(options.sleep ? { sleep: options.sleep } : {}),
      ...(options.random ? { random: options.random } : {}),
    });
    this.#sync = options.sync ?? DEFAULT_ROUTE53_SYNC;
    this.#sleep = options.sleep ?? abortableSleep;
    this.#clock = options.clock ?? systemClock;
  }

  async getSplit(signal: AbortSignal): Promise<RouteSplit> {
    const r53 = this.#route;
    const pair = await this.#readPair(r53, signal);
    const percent = shareOf(pair);
    if (percent === undefined)
      throw new RouterError(
        `${this.description}: both clusters' records have weight 0 while other records of the set ` +
          "carry weight, so the new cluster's share is undefined; give the old cluster's record a weight " +
          '(e.g. 100) before starting the rollout',
      );
    return weightsOnly(percent);
  }

  /** Returns once the change is INSYNC on Route 53's name servers (see the class comment). */
  async setWeight(weight: number, signal: AbortSignal): Promise<void> {
    const r53 = this.#route;
    const target = this.description;
    checkWholePercent(target, weight);
    const { oldRecord, newRecord } = await this.#readPair(r53, signal);
    const newWeight = weight;
    const oldWeight = 100 - weight;
    if (newWeight + oldWeight === 0)
      throw new RouterError(
        `${target}: refusing to write weight 0 to both records (Route 53 splits that evenly)`,
      );
    const output = await this.#aws.send(
      {
        operation: 'ChangeResourceRecordSets',
        permission: 'route53:ChangeResourceRecordSets',
        target,
        send: (abortSignal) =>
          this.#call((client, sdk) =>
            client.send(
              new sdk.ChangeResourceRecordSetsCommand({
                HostedZoneId: r53.hostedZoneId,
                ChangeBatch: {
                  Comment: `clustershift: new-cluster weight ${weight}%`,
                  // One batch, so Route 53 applies both records or neither. The records are
                  // written back whole (TTL, values or alias, health check, ...), only Weight changes.
                  Changes: [
                    { Action: 'UPSERT', ResourceRecordSet: { ...oldRecord, Weight: oldWeight } },
                    { Action: 'UPSERT', ResourceRecordSet: { ...newRecord, Weight: newWeight } },
                  ],
                },
              }),
              { abortSignal },
            ),
          ),
        classify: (error) => zoneNotFound(r53, target, error),
      },
      signal,
    );
    const change = output.ChangeInfo;
    if (!change?.Id)
      throw new RouterError(`${target}: ChangeResourceRecordSets answered without a change id`);
    if (change.Status !== 'INSYNC') await this.#waitInSync(target, change.Id, signal);
  }

  async verify(signal: AbortSignal): Promise<void> {
    await this.#readPair(this.#route, signal);
  }

  /** One SDK call, once the client and the SDK's commands are loaded. */
  async #call<T>(send: (client: Route53Client, sdk: Route53Sdk) => Promise<T>): Promise<T> {
    const [client, sdk] = await Promise.all([this.#client, loadRoute53Sdk()]);
    return send(client, sdk);
  }

  async #readPair(r53: Route53RouteConfig, signal: AbortSignal): Promise<RecordPair> {
    const target = this.description;
    const group = await this.#listRecordSet(r53, target, signal);
    const bySetIdentifier = (setIdentifier: string) => {
      const record = group.find((r) => r.SetIdentifier === setIdentifier);
      if (record && record.Weight === undefined)
        throw new RouterError(
          `${target}: the record with SetIdentifier ${setIdentifier} is not a weighted record ` +
            '(it has no Weight); clustershift shifts traffic between two weighted records',
        );
      return record as (ResourceRecordSet & { Weight: number }) | undefined;
    };
    const oldRecord = bySetIdentifier(r53.oldSetIdentifier);
    const newRecord = bySetIdentifier(r53.newSetIdentifier);
    if (!oldRecord || !newRecord) {
      const lacking = [
        ...(oldRecord ? [] : [`SetIdentifier ${r53.oldSetIdentifier} (old cluster)`]),
        ...(newRecord ? [] : [`SetIdentifier ${r53.newSetIdentifier} (new cluster)`]),
      ];
      const found = group.map((r) => r.SetIdentifier ?? '(none)').join(', ') || 'no records';
      throw new RouteNotFoundError(
        `${target}: no weighted ${r53.recordType} record ${r53.recordName} with ${lacking.join(' nor ')} ` +
          `(found: ${found}); create the missing record (the new cluster's with weight 0)`,
      );
    }
    return { oldRecord, newRecord, group };
  }

  /** Every record with the route's name and type, following the pages as far as they go. */
  async #listRecordSet(
    r53: Route53RouteConfig,
    target: string,
    signal: AbortSignal,
  ): Promise<ResourceRecordSet[]> {
    const wanted = normalizeName(r53.recordName);
    const matches = (name: string | undefined, type: string | undefined) =>
      name !== undefined && normalizeName(name) === wanted && type === r53.recordType;
    const group: ResourceRecordSet[] = [];
    let start: ListResourceRecordSetsCommandInput = {
      HostedZoneId: r53.hostedZoneId,
      StartRecordName: r53.recordName,
      StartRecordType: r53.recordType,
    };
    for (let page = 0; page < MAX_PAGES; page++) {
      const input = start;
      const output = await this.#aws.send(
        {
          operation: 'ListResourceRecordSets',
          permission: 'route53:ListResourceRecordSets',
          target,
          send: (abortSignal) =>
            this.#call((client, sdk) =>
              client.send(new sdk.ListResourceRecordSetsCommand(input), { abortSignal }),
            ),
          classify: (error) => zoneNotFound(r53, target, error),
        },
        signal,
      );
      // The listing is sorted by name and type and starts at ours: the first record of any
      // other name or type means ours are all seen.
      for (const record of output.ResourceRecordSets ?? []) {
        if (!matches(record.Name, record.Type)) return group;
        group.push(record);
      }
      if (!output.IsTruncated || !matches(output.NextRecordName, output.NextRecordType)) return group;
      start = {
        HostedZoneId: r53.hostedZoneId,
        StartRecordName: output.NextRecordName,
        StartRecordType: output.NextRecordType,
        ...(output.NextRecordIdentifier ? { StartRecordIdentifier: output.NextRecordIdentifier } : {}),
      };
    }
    throw new RouterError(
      `${target}: ListResourceRecordSets still had more pages of this name and type after ${MAX_PAGES}; ` +
        'the paging is not advancing, so the records cannot be read',
    );
  }

  async #waitInSync(target: string, changeId: string, signal: AbortSignal): Promise<void> {
    const deadline = this.#clock.now() + this.#sync.timeoutMs;
    let delayMs = this.#sync.firstDelayMs;
    for (;;) {
      const remainingMs = deadline - this.#clock.now();
      if (remainingMs <= 0)
        throw new TimeoutError(
          `${target}: change ${changeId} is still PENDING after ${this.#sync.timeoutMs}ms; the weights ` +
            'were accepted but not yet on every Route 53 name server. The controller reads them back on ' +
            'its next tick; `aws route53 get-change --id ...` shows the change',
        );
      await this.#sleep(Math.min(delayMs, remainingMs), signal);
      signal.throwIfAborted();
      delayMs = Math.min(delayMs * 2, this.#sync.maxDelayMs);
      const output = await this.#aws.send(
        {
          operation: 'GetChange',
          permission: 'route53:GetChange',
          target,
          send: (abortSignal) =>
            this.#call((client, sdk) =>
              client.send(new sdk.GetChangeCommand({ Id: changeId }), { abortSignal }),
            ),
        },
        signal,
      );
      if (output.ChangeInfo?.Status === 'INSYNC') return;
    }
  }
}

/**
 * Route 53 answers names fully qualified (trailing dot), in lower case, with some characters
 * escaped as \ooo octal (`*` is \052); the configuration may say any of that differently.
 */
export function normalizeName(name: string): string {
  return name
    .replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)))
    .toLowerCase()
    .replace(/\.$/, '');
}

/** The new cluster's percent between the two records; both 0 is an even split when every record is 0. */
function shareOf(pair: RecordPair): number | undefined {
  const total = pair.oldRecord.Weight + pair.newRecord.Weight;
  if (total > 0) return Math.round((10_000 * pair.newRecord.Weight) / total) / 100;
  return pair.group.every((record) => !record.Weight) ? 50 : undefined;
}

function zoneNotFound(
  r53: Route53RouteConfig,
  target: string,
  error: AwsErrorShape,
): RouteNotFoundError | undefined {
  if (error.name !== 'NoSuchHostedZone') return undefined;
  return new RouteNotFoundError(
    `${target}: the hosted zone ${r53.hostedZoneId} does not exist; check hostedZoneId in the route ` +
      '(aws route53 list-hosted-zones-by-name lists them)',
    { cause: error },
  );
}
