import { withoutReferenceProgramPath } from '../../src/cli';
import { parseEndpoint, parseFlags, UsageError } from '../../src/config/flags';
import { expandedArgs } from '../deploy/manifest-helpers';
import { describeWithReference, referenceContainers } from '../helpers/reference-manifests';

describe('plugin flags', () => {
  it("has the reference driver's defaults", () => {
    const f = parseFlags([]);
    expect(f).toMatchObject({
      cloudConfig: [],
      cloudNames: [''],
      withTopology: true,
      additionalTopology: {},
      cluster: '',
      provideControllerService: true,
      provideNodeService: true,
      pvcAnnotations: false,
      userAgent: [],
      logLevel: 'info',
      logFormat: 'json',
      kubeletDir: '/var/lib/kubelet',
      byIdDir: '/dev/disk/by-id',
    });
    expect(f.endpoint).toBeUndefined();
    expect(f.httpEndpoint).toBeUndefined();
  });

  it('reads the flags of the reference controller manifest unchanged', () => {
    const f = parseFlags([
      '--endpoint=unix://csi/csi.sock',
      '--cloud-config=/etc/config/cloud.conf',
      '--cluster=kubernetes',
      '--http-endpoint=:9809',
      '--v=1',
      '--provide-node-service=false',
      '--with-topology=true',
      '--pvc-annotations',
    ]);
    expect(f).toMatchObject({
      endpoint: 'unix://csi/csi.sock',
      cloudConfig: ['/etc/config/cloud.conf'],
      cluster: 'kubernetes',
      httpEndpoint: ':9809',
      logLevel: 'info',
      provideNodeService: false,
      pvcAnnotations: true,
    });
  });

  it('--volume-mount-group is off unless given (VOLUME_MOUNT_GROUP changes fsGroup handling for every volume)', () => {
    expect(parseFlags([]).volumeMountGroup).toBe(false);
    expect(parseFlags(['--volume-mount-group']).volumeMountGroup).toBe(true);
    expect(parseFlags(['--volume-mount-group=false']).volumeMountGroup).toBe(false);
  });

  it('accepts repeated flags, space-separated values and single dashes', () => {
    const f = parseFlags([
      '--cloud-config',
      '/a.conf',
      '-cloud-config=/b.conf',
      '--cloud-name=one',
      '--cloud-name',
      'two',
      '--additional-topology',
      'topology.kubernetes.io/region=r1',
      '--additional-topology=rack=a,row=b',
      '--user-agent=ua/1',
      '--user-agent=ua/2',
    ]);
    expect(f.cloudConfig).toEqual(['/a.conf', '/b.conf']);
    expect(f.cloudNames).toEqual(['one', 'two']);
    expect(f.additionalTopology).toEqual({ 'topology.kubernetes.io/region': 'r1', rack: 'a', row: 'b' });
    expect(f.userAgent).toEqual(['ua/1', 'ua/2']);
  });

  it('maps klog verbosity to log levels unless --log-level is given', () => {
    expect(parseFlags(['--v=5']).logLevel).toBe('debug');
    expect(parseFlags(['-v=6']).logLevel).toBe('trace');
    expect(parseFlags(['--v=6', '--log-level=warn']).logLevel).toBe('warn');
  });

  it('lists compatibility flags that have no effect', () => {
    expect(parseFlags(['--nodeid=abc', '--node-service-no-os-client', '--kubeconfig', '/k']).ignored).toEqual([
      'nodeid',
      'node-service-no-os-client',
      'kubeconfig',
    ]);
  });

  it.each([
    [['--bogus'], 'unknown flag --bogus'],
    [['--with-topology=maybe'], 'flag --with-topology: "maybe" is not a boolean'],
    [['--endpoint'], 'flag --endpoint needs a value'],
    [['--log-level=loud'], 'flag --log-level: "loud" is not one of'],
    [['--log-format=xml'], 'flag --log-format: "xml" is not json or text'],
    [['--v=high'], 'flag --v: "high" is not a non-negative integer'],
    [['--additional-topology=novalue'], 'flag --additional-topology: "novalue" is not key=value'],
    [['--additional-topology=bad key=v'], 'flag --additional-topology: "bad key=v"'],
    [['--metadata-url=ftp://x'], 'flag --metadata-url: "ftp://x" is not an http(s) URL'],
    [['stray'], 'unexpected argument "stray"'],
  ])('rejects %j naming the flag', (argv, message) => {
    expect(() => parseFlags(argv)).toThrow(UsageError);
    expect(() => parseFlags(argv)).toThrow(message);
  });
});

describe('parseEndpoint', () => {
  it.each([
    ['unix:///csi/csi.sock', { kind: 'unix', path: '/csi/csi.sock' }],
    ['unix:/var/lib/csi.sock', { kind: 'unix', path: '/var/lib/csi.sock' }],
    ['unix://csi/csi.sock', { kind: 'unix', path: `${process.cwd()}/csi/csi.sock` }],
    ['tcp://127.0.0.1:10000', { kind: 'tcp', host: '127.0.0.1', port: 10000 }],
    ['tcp://:10000', { kind: 'tcp', host: '0.0.0.0', port: 10000 }],
  ])('parses %s', (text, expected) => {
    expect(parseEndpoint(text)).toEqual(expected);
  });

  it.each(['unix://', 'http://x:1', 'tcp://host', 'tcp://h:99999', '/csi.sock'])('rejects %s', (text) => {
    expect(() => parseEndpoint(text)).toThrow(/flag --endpoint/);
  });
});

describeWithReference("the reference driver's manifests, unchanged", (dir) => {
  const plugins = referenceContainers(dir).filter(({ container }) => container.name === 'cinder-csi-plugin');

  it('finds the controller and the node plugin containers', () => {
    expect(plugins.map((p) => `${p.workload.kind}/${p.file}`).sort()).toEqual([
      'DaemonSet/cinder-csi-nodeplugin.yaml',
      'Deployment/cinder-csi-controllerplugin.yaml',
    ]);
  });

  it.each(['cinder-csi-controllerplugin.yaml', 'cinder-csi-nodeplugin.yaml'])(
    'every argument of %s parses after the program path',
    (file) => {
      const { container } = plugins.find((p) => p.file === file)!;
      // kubelet expands $(VAR) from the container's env before the process starts; expandedArgs does the same.
      const args = expandedArgs(container);
      expect(args[0]).toBe('/bin/cinder-csi-plugin');
      const rest = withoutReferenceProgramPath(args);
      expect(rest).toEqual(args.slice(1));
      const flags = parseFlags(rest);
      expect(flags.ignored).toEqual([]);
      expect(flags).toMatchObject({
        endpoint: 'unix://csi/csi.sock',
        cloudConfig: ['/etc/config/cloud.conf'],
        logLevel: 'info',
      });
      if (file.includes('node'))
        expect(flags).toMatchObject({ provideControllerService: false, provideNodeService: true });
      else
        expect(flags).toMatchObject({
          provideControllerService: true,
          provideNodeService: true,
          cluster: 'kubernetes',
          pvcAnnotations: true,
        });
    },
  );
});

describe('the program path as first argument', () => {
  it.each([['/bin/cinder-csi-plugin'], ['/usr/local/bin/cinder-csi-plugin'], ['cinder-csi-plugin']])(
    'drops %s',
    (path) => {
      expect(withoutReferenceProgramPath([path, '--v=1'])).toEqual(['--v=1']);
    },
  );

  it.each([[['--v=1', '/bin/cinder-csi-plugin']], [['/bin/cinder-csi-plugin-x']], [['version']], [[]]])(
    'keeps %j',
    (argv) => {
      expect(withoutReferenceProgramPath(argv)).toEqual(argv);
    },
  );
});
