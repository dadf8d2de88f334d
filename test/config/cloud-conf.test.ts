import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadCloudConfigFiles, parseCloudConfig } from '../../src/config/cloud-conf';

const FIXTURES = join(__dirname, '..', 'fixtures');
const parse = (text: string, requireCredentials = true) =>
  parseCloudConfig([{ file: '/etc/config/cloud.conf', text }], { requireCredentials });

const MINIMAL = '[Global]\nauth-url=http://ks:5000/v3\nusername=u\npassword=p\nuser-domain-name=Default\n';

describe('cloud.conf', () => {
  it('parses a cloud.conf as the reference documentation writes it', () => {
    const cfg = loadCloudConfigFiles([join(FIXTURES, 'cloud-reference-docs.conf')], { requireCredentials: true });
    const g = cfg.clouds.get('')!;
    expect(g.username).toBe('user');
    expect(g.password).toBe('p#ss;word"1');
    expect(g.userDomainName).toBe('default');
    expect(g.projectId).toBe('3b6a7a8a4c0f4d9c9e4b2b2f0a5c9f1e');
    expect(g.caFile).toBe('/etc/kubernetes/cacert.pem');
    expect(g.endpointType).toBe('public');
    const two = cfg.clouds.get('region-two')!;
    expect(two.applicationCredentialSecret).toBe('s3cret');
    expect(two.endpointType).toBe('internal');
    expect(cfg.blockStorage).toEqual({
      nodeVolumeAttachLimit: 64,
      rescanOnResize: false,
      ignoreVolumeAz: true,
      ignoreVolumeMicroversion: false,
    });
    expect(cfg.metadata).toEqual({ searchOrder: ['configDrive', 'metadataService'], requestTimeoutMs: 2000 });
    expect(cfg.warnings).toEqual([expect.stringContaining('[LoadBalancer]: unknown section')]);
  });

  it('keeps # and ; inside quoted values and drops unquoted inline comments', () => {
    const cfg = parse(`${MINIMAL}password = "a;b#c d" # comment\ntoken=abc ; comment\n`);
    expect(cfg.clouds.get('')!.password).toBe('a;b#c d');
    expect(cfg.clouds.get('')!.token).toBe('abc');
  });

  it('reads every [Global] key, including the legacy tenant and domain aliases', () => {
    const cfg = parse(`[Global]
auth-url=http://ks/v3
region=R1
os-endpoint-type=admin
user-id=uid
password=pw
domain-id=did
tenant-name=proj
tenant-domain-id=pdid
trust-id=tid
trustee-id=teid
trustee-password=tepw
application-credential-name=acn
application-credential-secret=acs
token=tok
ca-file=/ca
tls-insecure=true
cert-file=/c
key-file=/k
`);
    expect(cfg.clouds.get('')).toEqual({
      name: '',
      authUrl: 'http://ks/v3',
      region: 'R1',
      endpointType: 'admin',
      userId: 'uid',
      password: 'pw',
      userDomainId: 'did',
      projectName: 'proj',
      projectDomainId: 'pdid',
      trustId: 'tid',
      trusteeId: 'teid',
      trusteePassword: 'tepw',
      applicationCredentialName: 'acn',
      applicationCredentialSecret: 'acs',
      token: 'tok',
      caFile: '/ca',
      tlsInsecure: true,
      certFile: '/c',
      keyFile: '/k',
    });
    expect(cfg.warnings).toEqual([]);
  });

  it('lets a later file win key by key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cloudconf-'));
    writeFileSync(join(dir, 'a.conf'), `${MINIMAL}region=A\n[BlockStorage]\nrescan-on-resize=true\n`);
    writeFileSync(join(dir, 'b.conf'), '[Global]\nregion=B\n');
    const cfg = loadCloudConfigFiles([join(dir, 'a.conf'), join(dir, 'b.conf')], { requireCredentials: true });
    expect(cfg.clouds.get('')!.region).toBe('B');
    expect(cfg.clouds.get('')!.username).toBe('u');
    expect(cfg.blockStorage.rescanOnResize).toBe(true);
  });

  it('warns about unknown keys naming file, section and key', () => {
    const cfg = parse(`${MINIMAL}colour=blue\n[Metadata]\nshape=round\n`);
    expect(cfg.warnings).toEqual([
      '/etc/config/cloud.conf: [Global] colour: unknown key ignored',
      '/etc/config/cloud.conf: [Metadata] shape: unknown key ignored',
    ]);
  });

  it('needs no credentials on the node', () => {
    const cfg = parse('[BlockStorage]\nnode-volume-attach-limit=20\n', false);
    expect(cfg.clouds.size).toBe(0);
    expect(cfg.blockStorage.nodeVolumeAttachLimit).toBe(20);
    expect(cfg.metadata.requestTimeoutMs).toBe(5000);
  });

  it.each([
    ['no [Global] at all', '[BlockStorage]\n', /\[Global\]: section is required/],
    ['auth-url missing', '[Global]\nusername=u\npassword=p\n', /\[Global\] auth-url: is required/],
    ['auth-url not a URL', '[Global]\nauth-url=keystone\ntoken=t\n', /\[Global\] auth-url: must be an http/],
    [
      'password missing',
      '[Global]\nauth-url=http://k\nusername=u\nuser-domain-name=D\n',
      /\[Global\] password: is required/,
    ],
    [
      'user domain missing',
      '[Global]\nauth-url=http://k\nusername=u\npassword=p\n',
      /\[Global\] user-domain-name: is required/,
    ],
    [
      'app credential secret missing',
      '[Global]\nauth-url=http://k\napplication-credential-id=x\n',
      /application-credential-secret: is required/,
    ],
    ['bad boolean', `${MINIMAL}tls-insecure=maybe\n`, /\[Global\] tls-insecure: must be a boolean/],
    [
      'bad [BlockStorage] boolean',
      `${MINIMAL}[BlockStorage]\nignore-volume-az=perhaps\n`,
      /\[BlockStorage\] ignore-volume-az: must be a boolean/,
    ],
    [
      'bad attach limit',
      `${MINIMAL}[BlockStorage]\nnode-volume-attach-limit=lots\n`,
      /node-volume-attach-limit: must be an integer/,
    ],
    [
      'bad search-order',
      `${MINIMAL}[Metadata]\nsearch-order=configDrive,ec2\n`,
      /\[Metadata\] search-order: "ec2" is not one of/,
    ],
    ['repeated search-order source', `${MINIMAL}[Metadata]\nsearch-order=configDrive,configDrive\n`, /listed twice/],
    ['bad request-timeout', `${MINIMAL}[Metadata]\nrequest-timeout=soon\n`, /request-timeout: must be a duration/],
    [
      'bad endpoint type',
      `${MINIMAL}os-endpoint-type=private\n`,
      /os-endpoint-type: must be public, internal or admin/,
    ],
    ['unterminated quote', `${MINIMAL}password="abc\n`, /line 6: unterminated quoted value/],
    ['garbage line', `${MINIMAL}=nothing\n`, /line 6: cannot parse/],
    ['key before any section', 'auth-url=http://k\n', /line 1: key outside of any section/],
  ])('rejects %s with an error naming file, section and key', (_name, text, pattern) => {
    expect(() => parse(text)).toThrow(ConfigError);
    expect(() => parse(text)).toThrow(pattern);
    expect(() => parse(text)).toThrow(/^\/etc\/config\/cloud\.conf/);
  });

  it('clamps an attach limit above 256 with a warning, as the reference does', () => {
    const cfg = parse(`${MINIMAL}[BlockStorage]\nnode-volume-attach-limit=1000\n`);
    expect(cfg.blockStorage.nodeVolumeAttachLimit).toBe(256);
    expect(cfg.warnings[0]).toMatch(/outside 1\.\.256/);
  });

  it('accepts the extended metadata sources and Go durations', () => {
    const cfg = parse(
      `${MINIMAL}[Metadata]\nsearch-order = metadataService, cloudInit ,kubernetes\nrequest-timeout=1m30s\n`,
    );
    expect(cfg.metadata).toEqual({
      searchOrder: ['metadataService', 'cloudInit', 'kubernetes'],
      requestTimeoutMs: 90_000,
    });
  });

  it('names an unreadable file', () => {
    expect(() => loadCloudConfigFiles(['/nonexistent/cloud.conf'], { requireCredentials: true })).toThrow(
      /\/nonexistent\/cloud\.conf: cannot read cloud config/,
    );
  });

  it('returns frozen objects', () => {
    const cfg = parse(MINIMAL);
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(cfg.clouds.get(''))).toBe(true);
    expect(Object.isFrozen(cfg.blockStorage)).toBe(true);
  });
});
