/**
 * Builds the ObjectStore a request needs: S3 from the request's secrets (keys, optional endpoint) over the
 * StorageClass parameters and the controller's S3 defaults; Swift from the cloud.conf cloud the `cloud`
 * secret names. Credentials go from the secret straight into the client, never into a message.
 */
import { CodedError, Status } from '../errors';
import { S3ObjectStore } from './s3-store';
import { SwiftObjectStore, type SwiftStoreDeps } from './swift-store';
import type { ObjectStore } from './object-store';
import { DEFAULT_PATH_STYLE, DEFAULT_S3_REGION } from './object-params';
import type { ObjectProvider } from './volume-id';

/** Secret keys of S3 object volumes (provisioner and node-stage secrets; the shared contract). */
export const S3_ACCESS_KEY_SECRET = 'accessKeyID';
export const S3_SECRET_KEY_SECRET = 'secretAccessKey';
export const S3_ENDPOINT_SECRET = 'endpoint';
/** Optional: the signing region when a request carries no StorageClass parameters (DeleteVolume). */
export const S3_REGION_SECRET = 'region';
/** The secret key naming the cloud.conf cloud, as for Cinder. */
export const CLOUD_SECRET = 'cloud';

/** The controller's object-storage configuration, set by main.ts. Every field is optional. */
export interface ObjectControllerOptions {
  /** Used when neither the StorageClass nor the secret says otherwise. */
  s3?: { endpoint?: string; region?: string; pathStyle?: boolean };
  /** Swift access per cloud.conf cloud name ('' = `[Global]`); CloudClients fit. Absent: swift volumes are refused. */
  swift?: ReadonlyMap<string, SwiftStoreDeps>;
  /** Objects per list/delete page (tests lower it); default DELETE_PAGE_SIZE. */
  pageSize?: number;
}

/** Where a request's store should point; fields absent fall back to secrets, then defaults. */
export interface StoreTarget {
  provider: ObjectProvider;
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
}

/**
 * The store for one request plus the S3 endpoint it resolved to (for volume_context).
 * INVALID_ARGUMENT naming `secrets.<key>` for missing S3 keys or endpoint, or an unknown cloud;
 * FAILED_PRECONDITION when swift is asked for but this controller has no Swift access configured.
 */
export function objectStoreFor(
  target: StoreTarget,
  secrets: Readonly<Record<string, string>> | undefined,
  opts: ObjectControllerOptions,
): { store: ObjectStore; endpoint?: string } {
  const s = secrets ?? {};
  if (target.provider === 'swift') {
    const cloud = s[CLOUD_SECRET] ?? '';
    const swift = opts.swift;
    if (!swift || swift.size === 0)
      throw new CodedError(
        Status.FAILED_PRECONDITION,
        'provider swift: this controller has no OpenStack cloud configured for Swift',
      );
    const deps = swift.get(cloud) ?? (cloud === '' && swift.size === 1 ? [...swift.values()][0] : undefined);
    if (!deps)
      throw new CodedError(
        Status.INVALID_ARGUMENT,
        `secrets.${CLOUD_SECRET} names a cloud that is not configured for Swift`,
      );
    return { store: new SwiftObjectStore({ ...deps, pageSize: opts.pageSize ?? deps.pageSize }) };
  }
  const accessKey = s[S3_ACCESS_KEY_SECRET];
  const secretKey = s[S3_SECRET_KEY_SECRET];
  if (!accessKey)
    throw new CodedError(Status.INVALID_ARGUMENT, `secrets.${S3_ACCESS_KEY_SECRET} is required for provider s3`);
  if (!secretKey)
    throw new CodedError(Status.INVALID_ARGUMENT, `secrets.${S3_SECRET_KEY_SECRET} is required for provider s3`);
  const endpoint = target.endpoint ?? (s[S3_ENDPOINT_SECRET] || undefined) ?? opts.s3?.endpoint;
  if (!endpoint) {
    throw new CodedError(
      Status.INVALID_ARGUMENT,
      `secrets.${S3_ENDPOINT_SECRET} (or parameters.endpoint) is required: no default S3 endpoint is configured and the volume id does not carry one`,
    );
  }
  const region = target.region ?? (s[S3_REGION_SECRET] || undefined) ?? opts.s3?.region ?? DEFAULT_S3_REGION;
  const pathStyle = target.pathStyle ?? opts.s3?.pathStyle ?? DEFAULT_PATH_STYLE;
  let store: S3ObjectStore;
  try {
    store = new S3ObjectStore({ endpoint, accessKey, secretKey, region, pathStyle, pageSize: opts.pageSize });
  } catch (e) {
    // The endpoint came from the StorageClass or the secret; say which without echoing the secret's values.
    if (e instanceof CodedError && e.code === Status.INVALID_ARGUMENT) {
      const field = target.endpoint
        ? 'parameters.endpoint'
        : s[S3_ENDPOINT_SECRET]
          ? `secrets.${S3_ENDPOINT_SECRET}`
          : 'the default S3 endpoint';
      // The store's message quotes the URL; a value from the secret is not quoted back.
      if (field.startsWith('secrets.'))
        throw new CodedError(
          Status.INVALID_ARGUMENT,
          `${field} must be an http or https URL without path, query or user info`,
        );
      throw new CodedError(Status.INVALID_ARGUMENT, `${field}: ${e.details.replace(/^endpoint /, '')}`);
    }
    throw e;
  }
  return { store, endpoint };
}
