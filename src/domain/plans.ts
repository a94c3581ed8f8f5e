/**
 * A migration plan: which collections of an account a migration moves, into which targets, and
 * what each costs in IndexFaces calls and hours at the rate. Pure; `reindex plan` describes the
 * collections and writes their records files.
 */
import { z } from 'zod';
import { isNewerFaceModel } from './face-models';
import { isCollectionId } from './collection-names';

/** What a target template puts the old collection's name in place of. */
export const COLLECTION_PLACEHOLDER = '{collection}';

/** The plan file's format, for `reindex start --plan` to recognise. */
export const PLAN_FORMAT = 'rekognition-reindex/plan-1';

export interface DescribedCollection {
  collectionId: string;
  faceModelVersion: string;
  faces: number;
  users: number;
}

export interface PlannedCollection extends DescribedCollection {
  /**
   * IndexFaces calls its migration makes, one an image: counted when its records file was written,
   * and otherwise the most it can be, one a face.
   */
  indexFacesCalls: number;
  callsCounted: boolean;
  /** Hours the calls take at the plan's rate. */
  hours: number;
  /** With a records file: the collection it migrates into, the file, and the faces left out of it. */
  target?: string;
  records?: string;
  unplaced?: string;
  unplacedFaces?: number;
}

export interface Plan {
  format: typeof PLAN_FORMAT;
  createdAt: string;
  region: string;
  /** IndexFaces calls a second the hours are reckoned at. */
  tps: number;
  collections: PlannedCollection[];
  totals: { collections: number; faces: number; users: number; indexFacesCalls: number; hours: number };
}

export class PlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanError';
  }
}

/** The collections on a face model older than `version`; all of them without one. */
export function onOlderModels<T extends DescribedCollection>(collections: T[], version: string | undefined): T[] {
  return version === undefined
    ? collections
    : collections.filter((collection) => isNewerFaceModel(version, collection.faceModelVersion));
}

/**
 * Each source's target by the template. A target must be a name Rekognition takes, and no target
 * may be a collection the plan migrates: that run would index into a collection another run reads.
 */
export function targetsOf(template: string, sources: string[]): Map<string, string> {
  if (!template.includes(COLLECTION_PLACEHOLDER)) {
    throw new PlanError(
      `the target template ${template} must hold ${COLLECTION_PLACEHOLDER}, which each old collection's name replaces`,
    );
  }
  const planned = new Set(sources);
  const targets = new Map<string, string>();
  for (const source of sources) {
    const target = template.replaceAll(COLLECTION_PLACEHOLDER, source);
    if (!isCollectionId(target))
      throw new PlanError(
        `the target ${target} of ${source} is not a collection name: letters, digits and _ . - only, at most 255`,
      );
    if (planned.has(target))
      throw new PlanError(
        `the target ${target} of ${source} is itself a collection the plan migrates; narrow the plan with --older-than or --collections`,
      );
    targets.set(source, target);
  }
  return targets;
}

/** A collection's cost: at most one IndexFaces call a face until its images are counted. */
export function planned(collection: DescribedCollection, tps: number, images?: number): PlannedCollection {
  const indexFacesCalls = images ?? collection.faces;
  return { ...collection, indexFacesCalls, callsCounted: images !== undefined, hours: indexFacesCalls / tps / 3600 };
}

export function planOf(
  collections: PlannedCollection[],
  { region, tps, createdAt }: { region: string; tps: number; createdAt: string },
): Plan {
  const sum = (value: (collection: PlannedCollection) => number) =>
    collections.reduce((total, collection) => total + value(collection), 0);
  const indexFacesCalls = sum((collection) => collection.indexFacesCalls);
  return {
    format: PLAN_FORMAT,
    createdAt,
    region,
    tps,
    collections,
    totals: {
      collections: collections.length,
      faces: sum((collection) => collection.faces),
      users: sum((collection) => collection.users),
      indexFacesCalls,
      hours: indexFacesCalls / tps / 3600,
    },
  };
}

const plannedCollection = z.object({
  collectionId: z.string(),
  faceModelVersion: z.string(),
  faces: z.number(),
  users: z.number(),
  indexFacesCalls: z.number(),
  callsCounted: z.boolean(),
  hours: z.number(),
  target: z.string().refine(isCollectionId, 'must be a collection name').optional(),
  records: z.string().optional(),
  unplaced: z.string().optional(),
  unplacedFaces: z.number().optional(),
});

const planSchema = z.object({
  format: z.literal(PLAN_FORMAT),
  createdAt: z.string(),
  region: z.string(),
  tps: z.number(),
  collections: z.array(plannedCollection),
  totals: z.object({
    collections: z.number(),
    faces: z.number(),
    users: z.number(),
    indexFacesCalls: z.number(),
    hours: z.number(),
  }),
});

/** A collection of a plan that a run can migrate: it names its target and its records file. */
export type RunnablePlannedCollection = PlannedCollection & { target: string; records: string };

/**
 * The plan file `reindex plan --out` wrote, checked: every collection has a target and a records file, no target twice.
 */
export function parsePlan(text: string): Plan & { collections: RunnablePlannedCollection[] } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new PlanError('it is not JSON');
  }
  const parsed = planSchema.safeParse(json);
  if (!parsed.success) {
    const [issue] = parsed.error.issues;
    throw new PlanError(
      `it is not a plan file of reindex plan --out (${issue?.path.join('.') || 'the file'}: ${issue?.message ?? 'invalid'})`,
    );
  }
  const plan = parsed.data;
  const targets = new Set<string>();
  const runnable = plan.collections.map((collection) => {
    const { target, records } = collection;
    if (target === undefined || records === undefined)
      throw new PlanError(
        `the collection ${collection.collectionId} has no target or records file: write the plan with --out`,
      );
    if (targets.has(target)) throw new PlanError(`the target ${target} is named twice`);
    targets.add(target);
    return { ...collection, target, records };
  });
  if (runnable.length === 0) throw new PlanError('it names no collection');
  return { ...plan, collections: runnable };
}
