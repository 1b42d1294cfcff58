// The pieces both custom resources' schemas are built from: the API group, Kubernetes object
// names, times, conditions and label selectors, and the policy fields the configuration file
// defines (src/config/schema.ts), with the CEL rules the API server evaluates.

import { type Static, type TObject, type TProperties, type TSchema, Type } from '@sinclair/typebox';
import {
  AnalysisSchema,
  CrBlueGreenSchema,
  ParitySchema,
  PlanSchema,
  RouteSchema,
  ScalingSchema,
  StrategySchema,
} from '../config/schema.js';
import { DNS_SUBDOMAIN } from '../kube/names.js';

export const GROUP = 'clustershift.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export interface CelRule {
  rule: string;
  message: string;
}

export const closed = <T extends TProperties>(properties: T, description?: string): TObject<T> =>
  Type.Object(properties, { additionalProperties: false, ...(description ? { description } : {}) });

/** The same schema with CEL rules the API server evaluates (TypeBox ignores the keyword). */
export function withRules<T extends TSchema>(schema: T, rules: CelRule[]): T {
  return { ...schema, 'x-kubernetes-validations': rules };
}

// A Kubernetes object name (DNS subdomain), as the API server requires it.
export const ObjectName = (description: string) =>
  Type.String({
    minLength: 1,
    maxLength: DNS_SUBDOMAIN.maxLength,
    pattern: DNS_SUBDOMAIN.pattern,
    description,
  });

/** RFC 3339 in UTC with milliseconds, as Date.toISOString writes it; Kubernetes reads it as a Time. */
export const TIME_PATTERN = '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$';
export const Time = (description: string) => Type.String({ pattern: TIME_PATTERN, description });

// ---- shared pieces --------------------------------------------------------------------

export const Count = (description: string) => Type.Integer({ minimum: 0, description });
export const Amount = (description: string) => Type.Number({ minimum: 0, description });

/** A route exactly as the configuration file writes one. */
export const CrRouteSchema = RouteSchema;

/** The steps rise and end at 100; 100 items is the most a rising list of 1..100 can hold. */
export const CrPlanSchema = withRules(
  Type.Object(
    { ...PlanSchema.properties, steps: { ...PlanSchema.properties.steps, maxItems: 100 } },
    { additionalProperties: false },
  ),
  [
    {
      rule: '!has(self.steps) || (self.steps.isSorted() && self.steps.all(s, self.steps.exists_one(t, t == s)))',
      message: 'steps must rise: each weight above the one before it',
    },
    {
      rule: '!has(self.steps) || self.steps[self.steps.size() - 1] == 100',
      message: 'the last step must be 100',
    },
  ],
);

export const PolicyOverridesProperties = {
  plan: Type.Optional(CrPlanSchema),
  analysis: Type.Optional(AnalysisSchema),
  scaling: Type.Optional(ScalingSchema),
  strategy: Type.Optional(StrategySchema),
  blueGreen: Type.Optional(CrBlueGreenSchema),
  parity: Type.Optional(ParitySchema),
};

/** metav1.Condition, as the Kubernetes API conventions define it. */
export const ConditionSchema = closed({
  type: Type.String({
    minLength: 1,
    maxLength: 316,
    pattern:
      '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
    description: 'the condition type in CamelCase, e.g. Progressing',
  }),
  status: Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')]),
  observedGeneration: Type.Optional(
    Type.Integer({ minimum: 0, description: 'the metadata.generation this condition was set for' }),
  ),
  lastTransitionTime: Time('when status last changed'),
  reason: Type.String({
    minLength: 1,
    maxLength: 1024,
    pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    description: 'a CamelCase word for programs',
  }),
  message: Type.String({ maxLength: 32768, description: 'what a person should know, and what to do' }),
});
export type Condition = Static<typeof ConditionSchema>;

export const Conditions = {
  ...Type.Array(ConditionSchema, { maxItems: 16, description: 'Kubernetes-style conditions, one per type' }),
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
};

export const LabelSelector = closed(
  {
    matchLabels: Type.Optional(Type.Record(Type.String(), Type.String())),
    matchExpressions: Type.Optional(
      Type.Array(
        closed({
          key: Type.String({ minLength: 1 }),
          operator: Type.Union([
            Type.Literal('In'),
            Type.Literal('NotIn'),
            Type.Literal('Exists'),
            Type.Literal('DoesNotExist'),
          ]),
          values: Type.Optional(Type.Array(Type.String())),
        }),
      ),
    ),
  },
  'a Kubernetes label selector',
);
