/**
 * The typed syntax tree of a mapping. Every node is discriminated by `type` and
 * carries its `span` (line, column, offsets) for diagnostics.
 */
import type { Span } from './errors.js';

export type EventTypeName = 'track' | 'page' | 'screen' | 'identify' | 'group' | 'alias';
export const EVENT_TYPE_NAMES: readonly EventTypeName[] = ['track', 'page', 'screen', 'identify', 'group', 'alias'];

export type BinaryOp = '+' | '-' | '*' | '/' | '%' | '&' | '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in';

export type Expr =
  | { readonly type: 'Literal'; readonly value: string | number | boolean | null; readonly span: Span }
  | { readonly type: 'Identifier'; readonly name: string; readonly span: Span }
  /** `a.b` or `a["b"]` (a constant key). */
  | { readonly type: 'Member'; readonly object: Expr; readonly property: string; readonly propertySpan: Span; readonly span: Span }
  /** `a[i]`: a computed key or an index. */
  | { readonly type: 'Index'; readonly object: Expr; readonly index: Expr; readonly span: Span }
  | { readonly type: 'Call'; readonly callee: string; readonly calleeSpan: Span; readonly args: readonly Expr[]; readonly span: Span }
  | { readonly type: 'Lambda'; readonly params: readonly Param[]; readonly body: Expr; readonly span: Span }
  | { readonly type: 'Unary'; readonly op: '-' | 'not'; readonly arg: Expr; readonly span: Span }
  | { readonly type: 'Binary'; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr; readonly span: Span; readonly opSpan: Span }
  | { readonly type: 'Logical'; readonly op: 'and' | 'or' | '??'; readonly left: Expr; readonly right: Expr; readonly span: Span }
  | { readonly type: 'Conditional'; readonly test: Expr; readonly then: Expr; readonly otherwise: Expr; readonly span: Span }
  | { readonly type: 'Object'; readonly entries: readonly (Property | Spread)[]; readonly span: Span }
  | { readonly type: 'Array'; readonly items: readonly (Expr | Spread)[]; readonly span: Span }
  /** A JSON-Logic rule: `jsonlogic({...})`, or an object literal right after `when`. */
  | { readonly type: 'JsonLogic'; readonly rule: unknown; readonly span: Span };

export interface Param {
  readonly name: string;
  readonly span: Span;
}
export interface Property {
  readonly type: 'Property';
  readonly key: string;
  readonly keySpan: Span;
  readonly value: Expr;
}
export interface Spread {
  readonly type: 'Spread';
  readonly arg: Expr;
  readonly span: Span;
}

export interface PathSegment {
  readonly key: string | number;
  readonly span: Span;
}

export type Stmt =
  | { readonly type: 'Let'; readonly name: string; readonly nameSpan: Span; readonly value: Expr; readonly span: Span }
  | { readonly type: 'Assign'; readonly target: readonly PathSegment[]; readonly value: Expr; readonly span: Span }
  | { readonly type: 'SpreadStatement'; readonly arg: Expr; readonly span: Span }
  | { readonly type: 'Drop'; readonly span: Span }
  | { readonly type: 'If'; readonly test: Expr; readonly then: readonly Stmt[]; readonly otherwise: readonly Stmt[] | null; readonly span: Span };

export interface EventName {
  readonly value: string;
  readonly span: Span;
}

export interface Rule {
  readonly type: 'Rule';
  /** Event types the rule applies to; empty: every type (`on any`). */
  readonly eventTypes: readonly EventTypeName[];
  /** Event names (track events); empty: any name. */
  readonly events: readonly EventName[];
  readonly when: Expr | null;
  readonly body: readonly Stmt[];
  readonly span: Span;
}

export interface DefaultRule {
  readonly type: 'Default';
  readonly body: readonly Stmt[];
  readonly span: Span;
}

export type TopLevel = Rule | DefaultRule | Extract<Stmt, { type: 'Let' }>;

export interface Mapping {
  readonly type: 'Mapping';
  readonly items: readonly TopLevel[];
}
