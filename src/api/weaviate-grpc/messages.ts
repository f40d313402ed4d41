import type { ObjectPropertiesRequestMsg } from "./nested-properties.js";
import type { FilterTargetMsg } from "./filter-targets.js";
import type { RefPropertiesRequestMsg } from "./return-references.js";
import type { SearchOptionsMsg } from "./search-options.js";

/** The decoded messages of Weaviate's gRPC API (weaviate.proto) that OpenBatch reads and writes, as proto-loader gives them. */

// ---------------------------------------------------------------- decoded messages (the subset we read and write)

/** A `google.protobuf.Value`. */
export interface StructValue {
  nullValue?: number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: Struct;
  listValue?: { values?: StructValue[] };
}
/** A `google.protobuf.Struct`. */
export interface Struct {
  fields?: Record<string, StructValue>;
}
/** A `Vectors` entry: a (named) vector as float32 little-endian bytes; type 2 is a multi-vector. */
export interface VectorsMsg {
  name?: string;
  vectorBytes?: Buffer;
  type?: number;
}
/** The `BatchObject.Properties` of an object to insert. */
export interface PropertiesMsg {
  nonRefProperties?: Struct;
  singleTargetRefProps?: { uuids?: string[]; propName?: string }[];
  multiTargetRefProps?: { uuids?: string[]; propName?: string; targetCollection?: string }[];
  numberArrayProperties?: { values?: number[]; propName?: string; valuesBytes?: Buffer }[];
  intArrayProperties?: { values?: number[]; propName?: string }[];
  textArrayProperties?: { values?: string[]; propName?: string }[];
  booleanArrayProperties?: { values?: boolean[]; propName?: string }[];
  objectProperties?: { value?: PropertiesMsg; propName?: string }[];
  objectArrayProperties?: { values?: PropertiesMsg[]; propName?: string }[];
  emptyListProps?: string[];
}
/** A `BatchObject` of a BatchObjects request. */
export interface BatchObjectMsg {
  uuid?: string;
  vector?: number[];
  properties?: PropertiesMsg;
  collection?: string;
  tenant?: string;
  vectorBytes?: Buffer;
  vectors?: VectorsMsg[];
}
/** A `Filters` message (a where filter). */
export interface FiltersMsg {
  operator?: number;
  on?: string[];
  filters?: FiltersMsg[];
  valueText?: string;
  valueInt?: number;
  valueBoolean?: boolean;
  valueNumber?: number;
  valueTextArray?: { values?: string[] };
  valueIntArray?: { values?: number[] };
  valueBooleanArray?: { values?: boolean[] };
  valueNumberArray?: { values?: number[] };
  valueGeo?: { latitude?: number; longitude?: number; distance?: number };
  target?: FilterTargetMsg;
}
/** A `Targets` message: the target vectors of a search. */
export interface TargetsMsg {
  targetVectors?: string[];
  combination?: number;
  weightsForTargets?: { target?: string; weight?: number }[];
}
/** Fields of a near* message naming the vectors searched. */
export interface TargetedMsg {
  targetVectors?: string[];
  targets?: TargetsMsg;
  selection?: Buffer;
}
/** The near-searches Search and Aggregate both take (base_search.proto); the media ones only to be refused. */
export interface NearSearchesMsg {
  nearVector?: TargetedMsg & {
    vector?: number[];
    certainty?: number;
    distance?: number;
    vectorBytes?: Buffer;
    vectors?: VectorsMsg[];
    vectorPerTarget?: Record<string, Buffer>;
    vectorForTargets?: { name?: string; vectorBytes?: Buffer; vectors?: VectorsMsg[] }[];
  };
  nearObject?: TargetedMsg & { id?: string; certainty?: number; distance?: number };
  nearText?: TargetedMsg & { query?: string[]; certainty?: number; distance?: number; moveTo?: Buffer; moveAway?: Buffer };
  nearImage?: Buffer;
  nearAudio?: Buffer;
  nearVideo?: Buffer;
  nearDepth?: Buffer;
  nearThermal?: Buffer;
  nearImu?: Buffer;
}

/** A `SearchRequest`. */
export interface SearchRequestMsg extends SearchOptionsMsg, NearSearchesMsg {
  collection?: string;
  tenant?: string;
  properties?: { nonRefProperties?: string[]; returnAllNonrefProperties?: boolean; refProperties?: RefPropertiesRequestMsg[]; objectProperties?: ObjectPropertiesRequestMsg[] };
  metadata?: { uuid?: boolean; vector?: boolean; creationTimeUnix?: boolean; lastUpdateTimeUnix?: boolean; distance?: boolean; certainty?: boolean; score?: boolean; explainScore?: boolean; isConsistent?: boolean; vectors?: string[]; queryProfile?: boolean };
  limit?: number;
  offset?: number;
  after?: string;
  filters?: FiltersMsg;
  groupBy?: { path?: string[]; numberOfGroups?: number; objectsPerGroup?: number };
  // Sent only to be refused (UNIMPLEMENTED).
  generative?: Buffer;
  rerank?: Buffer;
  boost?: Buffer;
}
/** A `BatchDeleteRequest`. */
export interface BatchDeleteRequestMsg {
  collection?: string;
  filters?: FiltersMsg;
  verbose?: boolean;
  dryRun?: boolean;
  tenant?: string;
}
/** A result property value: one of the `Value` kinds. */
export type ValueMsg = Record<string, unknown>;

/** The `took` of a reply: seconds since `start` (a `performance.now()` reading, in ms). */
export const seconds = (start: number) => (performance.now() - start) / 1000;
