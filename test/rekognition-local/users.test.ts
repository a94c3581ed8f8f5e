import { randomUUID } from 'node:crypto';
import {
  AssociateFacesCommand,
  ConflictException,
  CreateCollectionCommand,
  CreateUserCommand,
  DeleteFacesCommand,
  DeleteUserCommand,
  DescribeCollectionCommand,
  DisassociateFacesCommand,
  IdempotentParameterMismatchException,
  IndexFacesCommand,
  ListFacesCommand,
  ListUsersCommand,
  ResourceNotFoundException,
  SearchUsersCommand,
  ServiceQuotaExceededException,
} from '@aws-sdk/client-rekognition';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { type RunningRekognition, startRekognitionLocal } from '../../harness/rekognition-local';

let rekognition: RunningRekognition;
let collectionId: string;

beforeAll(async () => {
  rekognition = await startRekognitionLocal();
});

beforeEach(async () => {
  collectionId = `users-${randomUUID()}`;
  await rekognition.client.send(new CreateCollectionCommand({ CollectionId: collectionId }));
});

afterAll(async () => {
  await rekognition.stop();
});

/** Indexes one photo of each person and returns their face ids in order. */
async function indexFaces(people: string[]): Promise<string[]> {
  const faces: DeclaredFace[] = people.map((person, i) => ({
    person,
    box: [(i % 10) * 0.1, Math.floor(i / 10) * 0.1, 0.08, 0.08],
  }));
  const ids: string[] = [];
  for (const face of faces) {
    const indexed = await rekognition.client.send(
      new IndexFacesCommand({
        CollectionId: collectionId,
        Image: { Bytes: syntheticPng([face]) },
        QualityFilter: 'NONE',
      }),
    );
    ids.push(indexed.FaceRecords?.[0]?.Face?.FaceId ?? '');
  }
  return ids;
}

test('a user with faces is listed ACTIVE, filters ListFaces, and is found by SearchUsers', async () => {
  const [ana1, ana2, bo] = await indexFaces(['ana', 'ana', 'bo']);
  await rekognition.client.send(new CreateUserCommand({ CollectionId: collectionId, UserId: 'user-ana' }));
  await rekognition.client.send(new CreateUserCommand({ CollectionId: collectionId, UserId: 'user-bo' }));
  const associated = await rekognition.client.send(
    new AssociateFacesCommand({ CollectionId: collectionId, UserId: 'user-ana', FaceIds: [ana1 ?? '', ana2 ?? ''] }),
  );
  await rekognition.client.send(
    new AssociateFacesCommand({ CollectionId: collectionId, UserId: 'user-bo', FaceIds: [bo ?? ''] }),
  );

  expect(associated.AssociatedFaces?.map((face) => face.FaceId)).toEqual([ana1, ana2]);
  expect(associated.UserStatus).toBe('ACTIVE');
  const users = await rekognition.client.send(new ListUsersCommand({ CollectionId: collectionId }));
  expect(users.Users).toEqual([
    { UserId: 'user-ana', UserStatus: 'ACTIVE' },
    { UserId: 'user-bo', UserStatus: 'ACTIVE' },
  ]);
  const anaFaces = await rekognition.client.send(
    new ListFacesCommand({ CollectionId: collectionId, UserId: 'user-ana' }),
  );
  expect(anaFaces.Faces?.map((face) => [face.FaceId, face.UserId]).sort()).toEqual(
    [
      [ana1, 'user-ana'],
      [ana2, 'user-ana'],
    ].sort(),
  );
  const described = await rekognition.client.send(new DescribeCollectionCommand({ CollectionId: collectionId }));
  expect(described.UserCount).toBe(2);

  const found = await rekognition.client.send(new SearchUsersCommand({ CollectionId: collectionId, FaceId: ana1 }));
  expect(found.UserMatches?.map((match) => match.User?.UserId)).toEqual(['user-ana']);
});

test('CreateUser with the same ClientRequestToken runs once; without one a second call conflicts', async () => {
  const request = { CollectionId: collectionId, UserId: 'user-1', ClientRequestToken: 'create-user-1' };
  await rekognition.client.send(new CreateUserCommand(request));
  await rekognition.client.send(new CreateUserCommand(request));

  await expect(
    rekognition.client.send(new CreateUserCommand({ CollectionId: collectionId, UserId: 'user-1' })),
  ).rejects.toThrow(ConflictException);
  await expect(rekognition.client.send(new CreateUserCommand({ ...request, UserId: 'user-2' }))).rejects.toThrow(
    IdempotentParameterMismatchException,
  );
  const users = await rekognition.client.send(new ListUsersCommand({ CollectionId: collectionId }));
  expect(users.Users).toEqual([{ UserId: 'user-1', UserStatus: 'CREATED' }]);
});

test('AssociateFaces replayed with its token answers as the first time, even after the faces moved on', async () => {
  const [face] = await indexFaces(['cy']);
  await rekognition.client.send(new CreateUserCommand({ CollectionId: collectionId, UserId: 'user-cy' }));
  const request = {
    CollectionId: collectionId,
    UserId: 'user-cy',
    FaceIds: [face ?? ''],
    ClientRequestToken: 'associate-cy',
  };

  const first = await rekognition.client.send(new AssociateFacesCommand(request));
  await rekognition.client.send(
    new DisassociateFacesCommand({ CollectionId: collectionId, UserId: 'user-cy', FaceIds: [face ?? ''] }),
  );
  const replay = await rekognition.client.send(new AssociateFacesCommand(request));

  expect(replay.AssociatedFaces).toEqual(first.AssociatedFaces);
  expect(replay.UserStatus).toBe('ACTIVE');
  const faces = await rekognition.client.send(new ListFacesCommand({ CollectionId: collectionId, UserId: 'user-cy' }));
  expect(faces.Faces).toEqual([]);
});

test('a face of another user, a missing face, and a stranger are reported, not associated', async () => {
  const [dana, eli] = await indexFaces(['dana', 'eli']);
  const missing = randomUUID();
  await rekognition.client.send(new CreateUserCommand({ CollectionId: collectionId, UserId: 'user-dana' }));
  await rekognition.client.send(new CreateUserCommand({ CollectionId: collectionId, UserId: 'user-other' }));
  await rekognition.client.send(
    new AssociateFacesCommand({ CollectionId: collectionId, UserId: 'user-dana', FaceIds: [dana ?? ''] }),
  );

  const stranger = await rekognition.client.send(
    new AssociateFacesCommand({ CollectionId: collectionId, UserId: 'user-dana', FaceIds: [eli ?? '', missing] }),
  );
  const taken = await rekognition.client.send(
    new AssociateFacesCommand({ CollectionId: collectionId, UserId: 'user-other', FaceIds: [dana ?? ''] }),
  );

  expect(stranger.AssociatedFaces).toEqual([]);
  expect(stranger.UnsuccessfulFaceAssociations?.map((failure) => [failure.FaceId, failure.Reasons])).toEqual([
    [eli, ['LOW_MATCH_CONFIDENCE']],
    [missing, ['FACE_NOT_FOUND']],
  ]);
  expect(taken.UnsuccessfulFaceAssociations).toEqual([
    { FaceId: dana, UserId: 'user-dana', Reasons: ['ASSOCIATED_TO_A_DIFFERENT_USER'] },
  ]);
});

test('a user holds at most 100 faces', async () => {
  await rekognition.client.send(new CreateUserCommand({ CollectionId: collectionId, UserId: 'user-many' }));
  const faces = await indexFaces(Array.from({ length: 101 }, () => 'fay'));

  await rekognition.client.send(
    new AssociateFacesCommand({ CollectionId: collectionId, UserId: 'user-many', FaceIds: faces.slice(0, 100) }),
  );
  await expect(
    rekognition.client.send(
      new AssociateFacesCommand({ CollectionId: collectionId, UserId: 'user-many', FaceIds: faces.slice(100) }),
    ),
  ).rejects.toThrow(ServiceQuotaExceededException);
  await expect(
    rekognition.client.send(
      new AssociateFacesCommand({ CollectionId: collectionId, UserId: 'user-many', FaceIds: faces }),
    ),
  ).rejects.toMatchObject({ name: 'ValidationException' });
});

test('an associated face cannot be deleted; deleting its user frees it', async () => {
  const [face] = await indexFaces(['gus']);
  await rekognition.client.send(new CreateUserCommand({ CollectionId: collectionId, UserId: 'user-gus' }));
  await rekognition.client.send(
    new AssociateFacesCommand({ CollectionId: collectionId, UserId: 'user-gus', FaceIds: [face ?? ''] }),
  );

  const refused = await rekognition.client.send(
    new DeleteFacesCommand({ CollectionId: collectionId, FaceIds: [face ?? ''] }),
  );
  expect(refused.UnsuccessfulFaceDeletions).toEqual([
    { FaceId: face, UserId: 'user-gus', Reasons: ['ASSOCIATED_TO_AN_EXISTING_USER'] },
  ]);

  await rekognition.client.send(
    new DeleteUserCommand({ CollectionId: collectionId, UserId: 'user-gus', ClientRequestToken: 'delete-gus' }),
  );
  await rekognition.client.send(
    new DeleteUserCommand({ CollectionId: collectionId, UserId: 'user-gus', ClientRequestToken: 'delete-gus' }),
  );
  await expect(
    rekognition.client.send(new DeleteUserCommand({ CollectionId: collectionId, UserId: 'user-gus' })),
  ).rejects.toThrow(ResourceNotFoundException);
  const deleted = await rekognition.client.send(
    new DeleteFacesCommand({ CollectionId: collectionId, FaceIds: [face ?? ''] }),
  );
  expect(deleted.DeletedFaces).toEqual([face]);
});
