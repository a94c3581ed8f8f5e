/**
 * What CloudFormation would make of a synthesized template for given parameter values, account
 * and region: Ref, Fn::GetAtt, Fn::Join, Fn::Split, Fn::If and the conditions this stack uses, resolved as
 * CloudFormation does, so tests compare the deployed policy and outputs with plain strings.
 * Resources resolve to the names and ARNs AWS gives them (queue URL, queue ARN, table ARN).
 */

export interface Template {
  Parameters?: Record<string, { Type: string; Default?: string | number }>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; DependsOn?: string | string[] }>;
  Outputs?: Record<string, { Value: unknown; Description?: string }>;
}

export interface Deployment {
  partition: string;
  region: string;
  account: string;
  parameters: Record<string, string>;
}

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

  function resource(id: string) {
    const found = template.Resources[id];
    if (!found) throw new Error(`no resource ${id}`);
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
        return evaluate(list[0]) === evaluate(list[1]);
      case 'Condition':
        return condition(args as string);
      default:
        throw new Error(`condition function ${String(fn)} is not modelled`);
    }
  }

  function evaluate(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(evaluate);
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    const [[fn, args] = []] = entries;
    if (entries.length === 1 && fn !== undefined && (fn === 'Ref' || fn.startsWith('Fn::'))) {
      switch (fn) {
        case 'Ref':
          return ref(args as string);
        case 'Fn::GetAtt': {
          const [id, attribute] = args as [string, string];
          if (attribute !== 'Arn') throw new Error(`Fn::GetAtt ${attribute} is not modelled`);
          return arn(id);
        }
        case 'Fn::Join': {
          const [separator, parts] = args as [string, unknown[]];
          return parts.map((part) => asString(evaluate(part))).join(separator);
        }
        case 'Fn::Split': {
          const [separator, text] = args as [string, unknown];
          return asString(evaluate(text)).split(separator);
        }
        case 'Fn::If': {
          const [name, whenTrue, whenFalse] = args as [string, unknown, unknown];
          return evaluate(condition(name) ? whenTrue : whenFalse);
        }
        default:
          throw new Error(`${fn} is not modelled`);
      }
    }
    return Object.fromEntries(entries.map(([key, inner]) => [key, evaluate(inner)]));
  }

  return { evaluate, condition };
}

function asString(value: unknown): string {
  if (typeof value !== 'string' && typeof value !== 'number') throw new Error(`expected a string, got ${JSON.stringify(value)}`);
  return String(value);
}
