/**
 * What CloudFormation would make of a synthesized template for given parameter values, account
 * and region: Ref, Fn::GetAtt, Fn::Join, Fn::Split, Fn::If and the conditions this stack uses, resolved as
 * CloudFormation does, so tests compare the deployed policy and outputs with plain strings.
 * `Ref: AWS::NoValue` leaves out the property or list element it is the value of. A resource whose
 * condition is false is not created, and referring to it is an error, as CloudFormation makes it.
 * Resources resolve to the names and ARNs AWS gives them (queue URL, queue ARN, table ARN); a KMS
 * key's id, which KMS makes up, is its logical id here.
 */

export interface Template {
  Parameters?: Record<string, { Type: string; Default?: string | number }>;
  Conditions?: Record<string, unknown>;
  Resources: Record<
    string,
    { Type: string; Properties?: Record<string, unknown>; DependsOn?: string | string[]; Condition?: string }
  >;
  Outputs?: Record<string, { Value: unknown; Description?: string }>;
}

export interface Deployment {
  partition: string;
  region: string;
  account: string;
  parameters: Record<string, string>;
}

/** What `Ref: AWS::NoValue` evaluates to until the property or element holding it is left out. */
const NO_VALUE = Symbol('AWS::NoValue');

export function evaluator(template: Template, deployment: Deployment) {
  const { partition, region, account } = deployment;
  const pseudo: Record<string, string> = {
    'AWS::Partition': partition,
    'AWS::Region': region,
    'AWS::AccountId': account,
    'AWS::URLSuffix': 'amazonaws.com',
  };

  function parameter(name: string): string {
    const given = deployment.parameters[name];
    if (given !== undefined) return given;
    const declared = template.Parameters?.[name];
    if (declared?.Default === undefined) throw new Error(`parameter ${name} has no value and no default`);
    return String(declared.Default);
  }

  function isCreated(id: string): boolean {
    const found = template.Resources[id];
    if (!found) throw new Error(`no resource ${id}`);
    return found.Condition === undefined || condition(found.Condition);
  }

  function resource(id: string) {
    const found = template.Resources[id];
    if (!found) throw new Error(`no resource ${id}`);
    if (!isCreated(id))
      throw new Error(
        `resource ${id} is referred to, but its condition ${String(found.Condition)} is false: it is not created`,
      );
    return found;
  }

  function nameOf(id: string, property: string): string {
    return asString(evaluate(resource(id).Properties?.[property]));
  }

  function ref(name: string): string {
    if (name in pseudo) return pseudo[name] ?? '';
    if (template.Parameters?.[name]) return parameter(name);
    const { Type } = resource(name);
    switch (Type) {
      case 'AWS::S3::Bucket':
        return nameOf(name, 'BucketName');
      case 'AWS::SQS::Queue':
        return `https://sqs.${region}.amazonaws.com/${account}/${nameOf(name, 'QueueName')}`;
      case 'AWS::DynamoDB::Table':
        return nameOf(name, 'TableName');
      case 'AWS::IAM::ManagedPolicy':
        return `arn:${partition}:iam::${account}:policy/${name}`;
      case 'AWS::KMS::Key':
        return name;
      default:
        throw new Error(`Ref of a ${Type} is not modelled`);
    }
  }

  function arn(id: string): string {
    const { Type } = resource(id);
    switch (Type) {
      case 'AWS::SQS::Queue':
        return `arn:${partition}:sqs:${region}:${account}:${nameOf(id, 'QueueName')}`;
      case 'AWS::DynamoDB::Table':
        return `arn:${partition}:dynamodb:${region}:${account}:table/${nameOf(id, 'TableName')}`;
      case 'AWS::S3::Bucket':
        return `arn:${partition}:s3:::${nameOf(id, 'BucketName')}`;
      case 'AWS::KMS::Key':
        return `arn:${partition}:kms:${region}:${account}:key/${id}`;
      default:
        throw new Error(`Fn::GetAtt Arn of a ${Type} is not modelled`);
    }
  }

  function condition(name: string): boolean {
    const expression = template.Conditions?.[name];
    if (expression === undefined) throw new Error(`no condition ${name}`);
    return truth(expression);
  }

  function truth(expression: unknown): boolean {
    const [[fn, args] = []] = Object.entries(expression as Record<string, unknown>);
    const list = args as unknown[];
    switch (fn) {
      case 'Fn::Not':
        return !truth(list[0]);
      case 'Fn::Equals':
        return resolve(list[0]) === resolve(list[1]);
      case 'Condition':
        return condition(args as string);
      default:
        throw new Error(`condition function ${String(fn)} is not modelled`);
    }
  }

  /** The value of a property, a statement or an output as deployed: undefined where it is left out. */
  function evaluate(value: unknown): unknown {
    const resolved = resolve(value);
    return resolved === NO_VALUE ? undefined : resolved;
  }

  function resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(resolve).filter((element) => element !== NO_VALUE);
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    const [[fn, args] = []] = entries;
    if (entries.length === 1 && fn !== undefined && (fn === 'Ref' || fn.startsWith('Fn::'))) {
      switch (fn) {
        case 'Ref':
          return args === 'AWS::NoValue' ? NO_VALUE : ref(args as string);
        case 'Fn::GetAtt': {
          const [id, attribute] = args as [string, string];
          if (attribute !== 'Arn') throw new Error(`Fn::GetAtt ${attribute} is not modelled`);
          return arn(id);
        }
        case 'Fn::Join': {
          const [separator, parts] = args as [string, unknown[]];
          return parts.map((part) => asString(resolve(part))).join(separator);
        }
        case 'Fn::Split': {
          const [separator, text] = args as [string, unknown];
          return asString(resolve(text)).split(separator);
        }
        case 'Fn::If': {
          const [name, whenTrue, whenFalse] = args as [string, unknown, unknown];
          return resolve(condition(name) ? whenTrue : whenFalse);
        }
        default:
          throw new Error(`${fn} is not modelled`);
      }
    }
    return Object.fromEntries(
      entries.map(([key, inner]) => [key, resolve(inner)]).filter(([, inner]) => inner !== NO_VALUE),
    );
  }

  return { evaluate, condition, isCreated };
}

function asString(value: unknown): string {
  if (typeof value !== 'string' && typeof value !== 'number')
    throw new Error(`expected a string, got ${JSON.stringify(value)}`);
  return String(value);
}
