/**
 * The intermediate representation shared by JSON-Logic and (later) the mapping DSL.
 *
 * Both front ends lower to this tree; `codegen.ts` is the only back end. A node
 * means exactly what json-logic-js means by the corresponding operator, so a
 * condition behaves the same in a policy and in a mapping.
 *
 * ```text
 * Node =
 *   literal      { value }                  a JSON value. Arrays are emitted fresh on each
 *                                           evaluation; non-logic objects are deep-frozen
 *                                           constants.
 *   array        { items: Node[] }          an array with at least one computed item.
 *   data         {}                         the whole data of the current scope
 *                                           (JSON-Logic `{"var": ""}`).
 *   var          { path: string[],          a static path read from the scope data. Each
 *                  fallback: Node | null }  segment reads an OWN property only; a missing
 *                                           segment (or an undefined value) yields
 *                                           `fallback` (null when absent). The front end
 *                                           never puts `__proto__`, `constructor` or
 *                                           `prototype` in `path`: such reads lower to
 *                                           the fallback.
 *   dynamic_var  { path: Node,              the path is computed at run time (a string,
 *                  fallback: Node | null }  number, …; same rules, checked at run time).
 *   if           { branches: {test, then}[], otherwise: Node | null }
 *                                           first truthy test wins; no else → null.
 *   and | or     { args: Node[] }           short-circuit, returns the deciding VALUE
 *                                           (not a boolean), like JavaScript && / ||
 *                                           but with JSON-Logic truthiness ([] is falsy).
 *   not          { arg, negate }            `!` (negate) and `!!`; returns a boolean.
 *   compare      { op, args }               == === != !== > >= with 2 args; < <= with 2
 *                                           or 3 (between). JavaScript semantics (== is
 *                                           loose).
 *   arith        { op, args }               + * - / % min max, with json-logic-js
 *                                           coercions (+ and * parseFloat their
 *                                           operands; unary -; + with one arg casts).
 *   call         { op, args }               a function operation from the registry
 *                                           (`in`, `cat`, `substr`, `merge`, `log`,
 *                                           domain and user operations). Arguments are
 *                                           evaluated left to right, then the function
 *                                           is called.
 *   missing      { args }                   keys of the scope data that are null/"".
 *   missing_some { need, keys }
 *   iterate      { op, source, body,        map | filter | all | some | none: `body`
 *                  param?, index? }         runs in a NEW scope whose data is the item.
 *                                           With `param` (a lambda, from the DSL) the body
 *                                           stays in the SAME scope and the item is the
 *                                           local `param` (its index the local `index`,
 *                                           when given); the DSL's ops every | sum |
 *                                           first | count exist only in this form.
 *   reduce       { source, body, initial }  `body` runs in a new scope whose data is
 *                                           { current, accumulator }.
 *
 * Added for the mapping DSL (JSON-Logic never produces these):
 *   local        { name }                   a local bound by `let` / a `bind` statement /
 *                                           a lambda's `param`. Names are unique per tree
 *                                           (the front end renames); they never reach
 *                                           the generated source.
 *   let          { name, value, body }      evaluates `value` once, then `body`.
 *   get          { object, path }           a static path read from a computed value, with
 *                                           `var`'s rules (own properties, missing → null).
 *   index        { object, key }            one computed key: array index or own property;
 *                                           forbidden keys read as null.
 *   object       { entries }                a FRESH object; entries are { key, value } or
 *                                           { spread }. A null value leaves its key out;
 *                                           a spread copies the own enumerable keys of a
 *                                           plain object (forbidden keys and nulls skipped).
 *                                           No key is ever a FORBIDDEN_SEGMENT.
 *   concat       { parts }                  a FRESH array: the items of every part that is
 *                                           an array, in order (array literal with spread).
 *   coalesce     { args }                   the first argument that is not null (`??`).
 *   output       { body: Stmt[] }           runs statements that build a fresh object, the
 *                                           value; a `drop` statement makes it null.
 *
 * Stmt =
 *   set   { path: (string|number)[], value }  assign below the output root, creating
 *                                             parents ({} for a key, [] for an index);
 *                                             a null value leaves the field out.
 *   merge { value }                           copy a plain object's own keys into the root.
 *   bind  { name, value }                     a local for the statements that follow.
 *   when  { test, then, otherwise }           conditional statements.
 *   drop  {}                                  the output is null (the event is dropped).
 * ```
 *
 * JSON-Logic scopes do not nest: inside a body, `var` sees only the item (as in
 * json-logic-js). Nodes are plain, immutable objects; passes return new trees.
 */

/** Comparison operators; `<` and `<=` accept a third operand (between). */
export type CompareOp = '==' | '===' | '!=' | '!==' | '>' | '>=' | '<' | '<=';
/** Arithmetic operators with json-logic-js coercion rules. */
export type ArithOp = '+' | '-' | '*' | '/' | '%' | 'min' | 'max';
/** Array operators whose body runs once per item, with the item as scope data. */
export type IterateOp = 'map' | 'filter' | 'all' | 'some' | 'none' | LambdaOnlyOp;
/** Array operators that exist only with a lambda `param` (from the DSL). `every` is true on []. */
export type LambdaOnlyOp = 'every' | 'sum' | 'first' | 'count';

export interface LiteralNode {
  readonly type: 'literal';
  readonly value: unknown;
}
export interface ArrayNode {
  readonly type: 'array';
  readonly items: readonly Node[];
}
export interface DataNode {
  readonly type: 'data';
}
export interface VarNode {
  readonly type: 'var';
  readonly path: readonly string[];
  readonly fallback: Node | null;
}
export interface DynamicVarNode {
  readonly type: 'dynamic_var';
  readonly path: Node;
  readonly fallback: Node | null;
}
export interface IfBranch {
  readonly test: Node;
  readonly then: Node;
}
export interface IfNode {
  readonly type: 'if';
  readonly branches: readonly IfBranch[];
  readonly otherwise: Node | null;
}
export interface AndNode {
  readonly type: 'and';
  readonly args: readonly Node[];
}
export interface OrNode {
  readonly type: 'or';
  readonly args: readonly Node[];
}
export interface NotNode {
  readonly type: 'not';
  readonly arg: Node;
  /** `true` for `!`, `false` for `!!`. */
  readonly negate: boolean;
}
export interface CompareNode {
  readonly type: 'compare';
  readonly op: CompareOp;
  readonly args: readonly Node[];
}
export interface ArithNode {
  readonly type: 'arith';
  readonly op: ArithOp;
  readonly args: readonly Node[];
}
export interface CallNode {
  readonly type: 'call';
  readonly op: string;
  readonly args: readonly Node[];
  /** JSON pointer of the call in the source rule, for compile-time diagnostics. */
  readonly at?: string;
}
export interface MissingNode {
  readonly type: 'missing';
  readonly args: readonly Node[];
}
export interface MissingSomeNode {
  readonly type: 'missing_some';
  readonly need: Node;
  readonly keys: Node;
}
export interface IterateNode {
  readonly type: 'iterate';
  readonly op: IterateOp;
  readonly source: Node;
  readonly body: Node;
  /** Lambda form: the item is this local and the body stays in the enclosing scope. */
  readonly param?: string;
  /** Lambda form with a second parameter: the item's index (0, 1, …) is this local. */
  readonly index?: string;
}
export interface ReduceNode {
  readonly type: 'reduce';
  readonly source: Node;
  readonly body: Node;
  readonly initial: Node | null;
}

export interface LocalNode {
  readonly type: 'local';
  readonly name: string;
}
export interface LetNode {
  readonly type: 'let';
  readonly name: string;
  readonly value: Node;
  readonly body: Node;
}
export interface GetNode {
  readonly type: 'get';
  readonly object: Node;
  readonly path: readonly string[];
}
export interface IndexNode {
  readonly type: 'index';
  readonly object: Node;
  readonly key: Node;
}
export type ObjectEntry = { readonly key: string; readonly value: Node } | { readonly spread: Node };
export interface ObjectNode {
  readonly type: 'object';
  readonly entries: readonly ObjectEntry[];
}
export interface ConcatNode {
  readonly type: 'concat';
  readonly parts: readonly Node[];
}
export interface CoalesceNode {
  readonly type: 'coalesce';
  readonly args: readonly Node[];
}
export interface OutputNode {
  readonly type: 'output';
  readonly body: readonly Stmt[];
}

export type Stmt =
  | { readonly type: 'set'; readonly path: readonly (string | number)[]; readonly value: Node }
  | { readonly type: 'merge'; readonly value: Node }
  | { readonly type: 'bind'; readonly name: string; readonly value: Node }
  | { readonly type: 'when'; readonly test: Node; readonly then: readonly Stmt[]; readonly otherwise: readonly Stmt[] }
  | { readonly type: 'drop' };

export type Node =
  | LocalNode
  | LetNode
  | GetNode
  | IndexNode
  | ObjectNode
  | ConcatNode
  | CoalesceNode
  | OutputNode
  | LiteralNode
  | ArrayNode
  | DataNode
  | VarNode
  | DynamicVarNode
  | IfNode
  | AndNode
  | OrNode
  | NotNode
  | CompareNode
  | ArithNode
  | CallNode
  | MissingNode
  | MissingSomeNode
  | IterateNode
  | ReduceNode;

/** Path segments a rule may never read (prototype-pollution gadgets). */
export const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Children evaluated in the SAME scope as `node` (bodies of iterate/reduce excluded). */
export function sameScopeChildren(node: Node): Node[] {
  switch (node.type) {
    case 'literal':
    case 'data':
      return [];
    case 'array':
      return [...node.items];
    case 'var':
      return node.fallback ? [node.fallback] : [];
    case 'dynamic_var':
      return node.fallback ? [node.path, node.fallback] : [node.path];
    case 'if': {
      const out: Node[] = [];
      for (const b of node.branches) out.push(b.test, b.then);
      if (node.otherwise) out.push(node.otherwise);
      return out;
    }
    case 'and':
    case 'or':
    case 'compare':
    case 'arith':
    case 'call':
    case 'missing':
      return [...node.args];
    case 'not':
      return [node.arg];
    case 'missing_some':
      return [node.need, node.keys];
    case 'iterate':
      return node.param === undefined ? [node.source] : [node.source, node.body];
    case 'reduce':
      return node.initial ? [node.source, node.initial] : [node.source];
    case 'local':
      return [];
    case 'let':
      return [node.value, node.body];
    case 'get':
      return [node.object];
    case 'index':
      return [node.object, node.key];
    case 'object':
      return node.entries.map((e) => ('spread' in e ? e.spread : e.value));
    case 'concat':
      return [...node.parts];
    case 'coalesce':
      return [...node.args];
    case 'output':
      return stmtChildren(node.body);
  }
}

/** The expressions of statements, nested blocks included, in order. */
export function stmtChildren(stmts: readonly Stmt[]): Node[] {
  const out: Node[] = [];
  for (const s of stmts) {
    switch (s.type) {
      case 'set':
      case 'merge':
      case 'bind':
        out.push(s.value);
        break;
      case 'when':
        out.push(s.test, ...stmtChildren(s.then), ...stmtChildren(s.otherwise));
        break;
      case 'drop':
        break;
    }
  }
  return out;
}

/** Whether `node` (in its own scope, bodies excluded) reads the scope data. */
export function readsScopeData(node: Node): boolean {
  if (node.type === 'data' || node.type === 'var' || node.type === 'dynamic_var') return true;
  if (node.type === 'missing' || node.type === 'missing_some') return true;
  return sameScopeChildren(node).some(readsScopeData);
}

/**
 * Whether `node` needs the scope data as one whole value (not just static paths):
 * `data`, dynamic paths, `missing`, `missing_some`.
 */
export function needsWholeScopeData(node: Node): boolean {
  if (node.type === 'data' || node.type === 'dynamic_var') return true;
  if (node.type === 'missing' || node.type === 'missing_some') return true;
  return sameScopeChildren(node).some(needsWholeScopeData);
}
