/**
 * Which faces of a target this tool may delete as its own leftovers, by FaceId: a face is kept when
 * the record that claimed it keeps it now; otherwise it is a leftover only when the ledger proves
 * this tool put it there (a claim, its ImageId, or its ExternalImageId); a face nothing attributes
 * to the tool is never deleted, only reported.
 */
import type { Face } from '@aws-sdk/client-rekognition';
import type { Ledger } from './ledger';

/** Why a face of the target is a leftover: what proves this tool indexed it. */
export type LeftoverProof =
  | 'claimed by a record that no longer keeps it'
  | 'its image was indexed by this tool'
  | 'its ExternalImageId was indexed by this tool';

export interface ReconcileFinding {
  /** Faces to delete, each with what proves it is this tool's. */
  leftovers: {
    FaceId: string;
    ImageId: string | undefined;
    ExternalImageId: string | undefined;
    proof: LeftoverProof;
  }[];
  /** Faces no record keeps and nothing attributes to this tool: left in place. */
  unattributed: { FaceId: string; ImageId: string | undefined; ExternalImageId: string | undefined }[];
}

export function createOrphanFinder(ledger: Ledger, collectionId: string) {
  return {
    /** The leftovers and the unattributed faces among `faces`, one page of ListFaces. */
    async classify(faces: Face[]): Promise<ReconcileFinding> {
      const keeping = await ledger.keepingOf(
        collectionId,
        faces.map((face) => face.FaceId ?? ''),
      );
      const candidates = faces.flatMap((face, i) =>
        keeping[i] === 'kept' ? [] : [{ face, claimed: keeping[i] !== 'unclaimed' }],
      );
      const imageIds = candidates.map(({ face }) => face.ImageId ?? '');
      const named = candidates.flatMap(({ face }) =>
        face.ExternalImageId === undefined ? [] : [face.ExternalImageId],
      );
      const [imageKnown, namedKnown] = await Promise.all([
        ledger.hasImages(collectionId, imageIds),
        ledger.hasExternalIds(collectionId, named),
      ]);
      const externalKnown = new Set(named.filter((_, i) => namedKnown[i]));
      const finding: ReconcileFinding = { leftovers: [], unattributed: [] };
      candidates.forEach(({ face, claimed }, i) => {
        const seen = { FaceId: face.FaceId ?? '', ImageId: face.ImageId, ExternalImageId: face.ExternalImageId };
        let proof: LeftoverProof | undefined;
        if (claimed) proof = 'claimed by a record that no longer keeps it';
        else if (imageKnown[i]) proof = 'its image was indexed by this tool';
        else if (face.ExternalImageId !== undefined && externalKnown.has(face.ExternalImageId))
          proof = 'its ExternalImageId was indexed by this tool';
        if (proof) finding.leftovers.push({ ...seen, proof });
        else finding.unattributed.push(seen);
      });
      return finding;
    },
  };
}
